"""``skyfleet domain|project|user|group|role-assignment ...``: declare Keystone objects once, provisioned into
every placed site's own Keystone (/v1/identity/*), and see each site's binding.

A user's password is never an argument (it would sit in the shell history and the process list):
``--password-file`` reads it from a file (``-`` for stdin), ``--password-prompt`` asks for it
without echo; ``skyfleet user set-password NAME`` rotates it the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from skyfleet.cli import quota as quota_cli
from skyfleet.cli.client import seg
from skyfleet.cli.context import Ctx
from skyfleet.cli.output import emit
from skyfleet.cli.sync import BINDING_COLUMNS, COLUMNS, Group, Selector, Sites, _call, placement
from skyfleet.cli.sync import _show as _show_resource

Force = Annotated[bool, typer.Option(help="Take over an existing object whose attributes differ")]
Purge = Annotated[bool, typer.Option(help="Delete what Skyfleet created (default: disable projects and users)")]
Domain = Annotated[str, typer.Option(help="Keystone domain, by name")]
InDomain = Annotated[str | None, typer.Option(
    "--domain", help="A project's, user's or group's domain (needed when its name is declared in several)")]
Description = Annotated[str | None, typer.Option(help="Description")]
PasswordFile = Annotated[Path | None, typer.Option(help="Read the user's password from this file ('-': stdin)")]
PasswordPrompt = Annotated[bool, typer.Option(help="Ask for the user's password (not echoed)")]


def read_password(password_file: Path | None, prompt: bool) -> str | None:
    """The password from a file or a prompt; None when neither is asked for."""
    if password_file is not None and prompt:
        raise typer.BadParameter("give one of --password-file, --password-prompt")
    if password_file is not None:
        text = typer.get_text_stream("stdin").read() if str(password_file) == "-" else password_file.read_text()
        value = text.rstrip("\n")
        if not value:
            raise typer.BadParameter("the password file is empty")
        return value
    if prompt:
        return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))
    return None


def _body(spec: dict[str, Any], force: bool, site: list[str] | None, selector: str | None,
          group: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"spec": spec, "force": force}
    where = placement(site, selector, group)
    if where:
        body["placement"] = where
    return body


def _show(ctx: typer.Context, body: Any) -> None:
    """A declared object and its bindings; a user's bindings with its groups in each site and who made
    each membership (added by Skyfleet, adopted, or kept after the group was dropped)."""
    c: Ctx = ctx.obj
    if c.fmt == "json" or not isinstance(body, dict) or body.get("kind") != "user":
        _show_resource(ctx, body)
        return
    emit({k: v for k, v in body.items() if k != "bindings"}, fmt=c.fmt)
    emit(body["bindings"], fmt=c.fmt, columns=[*BINDING_COLUMNS[:-1], ("memberships", "GROUPS"), BINDING_COLUMNS[-1]])


def _in(domain: str | None) -> dict[str, str]:
    """The ``domain`` query parameter: which domain's project, user or group a name means."""
    return {"domain": domain} if domain else {}


def _common(app: typer.Typer, path: str) -> None:
    @app.command("list")
    def list_(ctx: typer.Context, domain: InDomain = None) -> None:
        """Declared objects with a count of bindings per status (--domain: a domain's projects, users, groups)."""
        c: Ctx = ctx.obj
        rows = _call(ctx, "GET", f"/v1/identity/{path}", params={"limit": 1000, **_in(domain)})["resources"]
        emit(rows, fmt=c.fmt, columns=[col for col in COLUMNS if col[0] != "project_id"])

    @app.command("show")
    def show(ctx: typer.Context, ref: str, domain: InDomain = None) -> None:
        """One declared object and its binding in each site."""
        _show(ctx, _call(ctx, "GET", f"/v1/identity/{path}/{seg(ref)}", params=_in(domain)))

    @app.command("delete")
    def delete(ctx: typer.Context, ref: str, purge: Purge = False, domain: InDomain = None) -> None:
        """Remove the declaration: disable (projects, users) or, with --purge, delete what Skyfleet created."""
        _show(ctx, _call(ctx, "DELETE", f"/v1/identity/{path}/{seg(ref)}", params={"purge": purge, **_in(domain)}))


# ``skyfleet project`` already holds the mapping commands (mappings, map, unmap): one group for both.
project_app = quota_cli.project_app
project_app.info.help = "Global projects: declared once and provisioned into every placed site, and mapped."
domain_app = typer.Typer(help="Declared Keystone domains, provisioned into every placed site.", no_args_is_help=True)
user_app = typer.Typer(help="Declared Keystone users, provisioned into every placed site.", no_args_is_help=True)
group_app = typer.Typer(help="Declared Keystone groups, provisioned into every placed site.", no_args_is_help=True)
role_assignment_app = typer.Typer(help="Declared role assignments (user or group, project or domain, role by name).",
                                  no_args_is_help=True)
for _app, _path in ((domain_app, "domains"), (project_app, "projects"), (user_app, "users"), (group_app, "groups"),
                    (role_assignment_app, "role-assignments")):
    _common(_app, _path)


@domain_app.command("create")
def create_domain(ctx: typer.Context, name: str, description: Description = None,
                  disabled: Annotated[bool, typer.Option(help="Declare it disabled")] = False,
                  site: Sites = None, selector: Selector = None, group: Group = None, force: Force = False) -> None:
    """Declare a domain (removal disables it; --purge on delete disables, then deletes it)."""
    spec = {"name": name, "description": description or "", "enabled": not disabled}
    _show(ctx, _call(ctx, "POST", "/v1/identity/domains", json=_body(spec, force, site, selector, group)))


@project_app.command("create")
def create_project(ctx: typer.Context, name: str, domain: Domain = "Default", description: Description = None,
                   disabled: Annotated[bool, typer.Option(help="Declare it disabled")] = False,
                   site: Sites = None, selector: Selector = None, group: Group = None, force: Force = False) -> None:
    """Declare a project; answers at once with the operation converging it."""
    spec = {"name": name, "domain": domain, "description": description or "", "enabled": not disabled}
    _show(ctx, _call(ctx, "POST", "/v1/identity/projects", json=_body(spec, force, site, selector, group)))


@group_app.command("create")
def create_group(ctx: typer.Context, name: str, domain: Domain = "Default", description: Description = None,
                 site: Sites = None, selector: Selector = None, group: Group = None, force: Force = False) -> None:
    """Declare a group."""
    spec = {"name": name, "domain": domain, "description": description or ""}
    _show(ctx, _call(ctx, "POST", "/v1/identity/groups", json=_body(spec, force, site, selector, group)))


@user_app.command("create")
def create_user(ctx: typer.Context, name: str, domain: Domain = "Default", description: Description = None,
                email: Annotated[str | None, typer.Option(help="E-mail address")] = None,
                default_project: Annotated[str | None, typer.Option(help="Default project, by name")] = None,
                member_of: Annotated[list[str] | None, typer.Option("--member-of", help="Group (repeatable)")] = None,
                password_file: PasswordFile = None, password_prompt: PasswordPrompt = False,
                site: Sites = None, selector: Selector = None, group: Group = None, force: Force = False) -> None:
    """Declare a user; without a password option, its password is managed outside Skyfleet."""
    spec: dict[str, Any] = {"name": name, "domain": domain, "description": description or "", "email": email,
                            "default_project": default_project, "groups": member_of or [],
                            "password": read_password(password_file, password_prompt)}
    _show(ctx, _call(ctx, "POST", "/v1/identity/users", json=_body(spec, force, site, selector, group)))


@user_app.command("set-password")
def set_password(ctx: typer.Context, name: str, password_file: PasswordFile = None, domain: InDomain = None) -> None:
    """Rotate a declared user's password on every placed site (asks for it unless --password-file)."""
    password = read_password(password_file, password_file is None)
    _show(ctx, _call(ctx, "PATCH", f"/v1/identity/users/{seg(name)}", json={"spec": {"password": password}},
                     params=_in(domain)))


@role_assignment_app.command("create")
def create_assignment(ctx: typer.Context, role: Annotated[str, typer.Option(help="Role, by name")],
                      project: Annotated[str | None, typer.Option(
                          help="Project, by name (without it: the domain itself)")] = None,
                      user: Annotated[str | None, typer.Option(help="User, by name")] = None,
                      of_group: Annotated[str | None, typer.Option("--of-group", help="Group, by name")] = None,
                      domain: Domain = "Default",
                      user_domain: Annotated[str | None, typer.Option(
                          help="The user's domain, by name, when not --domain")] = None,
                      group_domain: Annotated[str | None, typer.Option(
                          help="The group's domain, by name, when not --domain")] = None,
                      project_domain: Annotated[str | None, typer.Option(
                          help="The project's domain, by name, when not --domain")] = None,
                      inherited: Annotated[bool, typer.Option(
                          help="Inherited (OS-INHERIT): reaches the projects of the domain or below the project")]
                      = False,
                      create_missing_roles: Annotated[bool, typer.Option(
                          help="Create the role on sites that lack it (never admin)")] = False,
                      site: Sites = None, selector: Selector = None, group: Group = None) -> None:
    """Declare that a user (or a group) holds a role on a project or a domain, on every placed site.
    The user or group may live in another domain than the project or the domain granted on
    (--user-domain, --group-domain, --project-domain; each defaults to --domain)."""
    spec: dict[str, Any] = {"project": project, "role": role, "domain": domain, "inherited": inherited,
                            "create_missing_roles": create_missing_roles}
    named = {"user_domain": user_domain, "group_domain": group_domain, "project_domain": project_domain}
    spec.update({k: v for k, v in named.items() if v})
    spec.update({"user": user} if user else {"group": of_group} if of_group else {})
    _show(ctx, _call(ctx, "PUT", "/v1/identity/role-assignments", json=_body(spec, False, site, selector, group)))
