"""``sync.project``, ``sync.user``, ``sync.group``: converge one declared Keystone object in one
site's own Keystone (ensure or delete).

Why it exists: sites that share nothing each keep their own projects, users and groups; a fleet
admin declares them once. The rule, per site:

- absent -> created (owned); the object is looked up by name in the same-named domain;
- present with the declared attributes -> adopted (in sync; not owned unless an earlier, cut-short
  attempt of this task created it);
- present with other attributes -> a failed binding naming the fields, unless Skyfleet owns it
  (drift: repaired) or ``force`` is set (taken over);
- a user is added to each group of ``groups``. Each membership is reported per site (``memberships``,
  kept on the binding): ``added`` when Skyfleet added it, ``adopted`` when it was there before.
  A group an earlier version of the declaration listed (``leave_groups``) is left only where
  Skyfleet added the membership (``added_groups``, the binding's record, carried in the payload);
  an adopted one is ``kept``. Memberships the declaration never listed are left alone. The groups
  a task is about to join are recorded as its intent first, so a retry after a crash knows them as
  Skyfleet's;
- a domain the site lacks fails the binding, unless Skyfleet declares that domain too
  (``domain_declared``): then the task retries until the domain's own task has created it;
- a user's password is sealed in the payload (encrypted with the SecretBox) and opened only here;
  the site is asked whether the password works (an unscoped token request), and it is set when it
  does not: on create, on rotation, and after an out-of-band change (drift);
- delete: only what Skyfleet created is touched. Projects and users are disabled, or deleted with
  ``purge``; groups (which cannot be disabled) are deleted only with ``purge``. A purged user that
  Skyfleet adopted is kept but taken out of the groups Skyfleet added it to.

The site credential's own user and project are never touched (a refusal, not a silent skip). Nor is
a user Skyfleet did not create that holds the admin role in the site (no take-over, password or
membership change), and no user is added to a group that holds it: a declaration never makes its
author an admin of a site (a domain admin declares users whose passwords it knows).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

from pydantic import Field

from skyfleet.domains.text import Name, Text
from skyfleet.drivers.openstack import identityapi, syncapi
from skyfleet.errors import PermanentSiteError, TemporarySiteError
from skyfleet.logs import SECRETS
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, identity_ids, register
from skyfleet.reconcile.kinds.sync_common import SyncPayload, create_intent, verdict

NAME = r"^[^/:\s][^/:]{0,63}$"


class _Named(SyncPayload):
    name: Name = Field(pattern=NAME)
    domain: Name = Field("Default", min_length=1, max_length=64)
    description: Text = Field("", max_length=255)
    domain_declared: bool = False  # Skyfleet declares the domain too: wait for it, do not fail


class ProjectSync(_Named):
    enabled: bool = True


class GroupSync(_Named):
    pass


class UserSync(_Named):
    email: Name | None = Field(None, max_length=255)
    enabled: bool = True
    default_project: Name | None = Field(None, pattern=NAME)
    groups: list[Annotated[Name, Field(pattern=NAME)]] = Field(default_factory=list, max_length=100)
    leave_groups: list[Name] = Field(default_factory=list)  # groups the declaration listed once, no longer
    added_groups: list[Name] = Field(default_factory=list)  # memberships Skyfleet added in this site
    password_box: str | None = Field(None, repr=False)  # the password, sealed with the SecretBox
    # roles that make an admin besides ``admin``: the fleet admin role (SKYFLEET_ADMIN_ROLE) when another
    admin_roles: list[Annotated[Name, Field(max_length=255)]] = Field(default_factory=list, max_length=10)


Payload = ProjectSync | GroupSync | UserSync
COLLECTION: dict[type[Any], identityapi.Collection] = {ProjectSync: "projects", GroupSync: "groups",
                                                       UserSync: "users"}


@contextmanager
def opened_password(ctx: SiteContext, p: Payload) -> Iterator[str | None]:
    """The user's password in clear, for the length of the block; masked in logs meanwhile."""
    if not isinstance(p, UserSync) or not p.password_box:
        yield None
        return
    if ctx.reveal is None:
        raise PermanentSiteError("this worker cannot open sealed passwords")
    password = str(ctx.reveal(p.password_box)["password"])
    known = password in SECRETS  # already masked for another reason (a site secret): keep it so
    SECRETS.add(password)
    try:
        yield password
    finally:
        if not known:
            SECRETS.discard(password)


def missing_domain(ctx: SiteContext, domain: str, declared: bool) -> Exception:
    """A domain the site lacks: waited for (retried) when Skyfleet declares it, a failure otherwise."""
    if declared:
        return TemporarySiteError(f"domain {domain!r} is not in site {ctx.site_name} yet")
    return PermanentSiteError(f"no domain {domain!r} in site {ctx.site_name}")


def _domain(ctx: SiteContext, p: Payload) -> str:
    found = identity_ids.domain_id(ctx, p.domain)
    if found is None:
        raise missing_domain(ctx, p.domain, p.domain_declared)
    return found


def _project_id(ctx: SiteContext, name: str, domain: str) -> str:
    found = identityapi.find_named(ctx.connection(), "projects", name, domain)
    if found is None:  # its own task may not have run yet: retry
        raise TemporarySiteError(f"project {name!r} is not in site {ctx.site_name} yet")
    return str(found["id"])


def desired(ctx: SiteContext, p: Payload, domain: str) -> dict[str, Any]:
    """The attributes Skyfleet compares and writes (besides name, domain and password)."""
    attrs: dict[str, Any] = {"description": p.description}
    if isinstance(p, ProjectSync | UserSync):
        attrs["enabled"] = p.enabled
    if isinstance(p, UserSync):
        attrs["email"] = p.email
        attrs["default_project_id"] = _project_id(ctx, p.default_project, domain) if p.default_project else None
    return attrs


def _protected(ctx: SiteContext, collection: str, found: dict[str, Any] | None) -> None:
    if found is None or collection == "groups":
        return
    user_id, project_id = syncapi.current_ids(ctx.connection())
    if found["id"] == (user_id if collection == "users" else project_id):
        raise PermanentSiteError(f"refused: {found['name']!r} is the {collection[:-1]} of Skyfleet's own "
                                 f"credential in site {ctx.site_name}; Skyfleet never manages it")


def observe(ctx: SiteContext, p: Payload) -> dict[str, Any]:
    collection = COLLECTION[type(p)]
    identity_ids.begin()
    if p.action == "delete" and identity_ids.domain_id(ctx, p.domain) is None:
        # no domain, nothing in it to remove (a purged domain takes its objects with it)
        return {"collection": collection, "found": None, "action": p.action, "owned": p.owned,
                "created_before": ctx.created_before, "domain": None}
    domain = _domain(ctx, p)
    found = identityapi.find_named(ctx.connection(), collection, p.name, domain)
    _protected(ctx, collection, found)
    seen: dict[str, Any] = {"collection": collection, "found": found, "action": p.action,
                            "owned": p.owned or ctx.created_before, "created_before": ctx.created_before,
                            "domain": domain}
    if p.action == "delete":
        if isinstance(p, UserSync) and found is not None and p.purge and not seen["owned"]:
            seen["leave"] = _added_memberships(ctx, p, str(found["id"]), domain)
        return seen
    want = desired(ctx, p, domain)
    seen["want"] = want
    if found is not None:
        seen["differs"] = sorted(k for k, v in want.items() if found.get(k, None if k != "description" else "") != v)
        if isinstance(p, UserSync):
            seen.update(_user_extras(ctx, p, found, domain))
    return seen


def _ours(ctx: SiteContext, p: UserSync) -> set[str]:
    """The groups whose membership in this site Skyfleet added: the binding's record, and the groups
    an earlier, cut-short attempt of this task set out to join."""
    return set(p.added_groups) | set((ctx.prior_intent or {}).get("join") or [])


def _added_memberships(ctx: SiteContext, p: UserSync, user_id: str, domain: str) -> list[str]:
    """The ids of the groups Skyfleet added the user to that still hold it (a purge takes it out)."""
    out = []
    for group in sorted(_ours(ctx, p)):
        found = identityapi.find_named(ctx.connection(), "groups", group, domain)
        if found is not None and identityapi.in_group(ctx.connection(), str(found["id"]), user_id):
            out.append(str(found["id"]))
    return out


def _user_extras(ctx: SiteContext, p: UserSync, found: dict[str, Any], domain: str) -> dict[str, Any]:
    """Whether the password works (an enabled user only: Keystone refuses any password of a disabled
    one), which declared groups the user is missing from, which dropped groups it leaves (only those
    Skyfleet added it to), and each membership's standing (``added``, ``adopted``, ``kept``)."""
    extras: dict[str, Any] = {"password_ok": True, "join": [], "join_names": [], "leave": [], "memberships": {}}
    with opened_password(ctx, p) as password:
        if password is not None and p.enabled and found.get("enabled", True):
            extras["password_ok"] = identityapi.password_works(ctx.connection(), str(found["id"]), password)
    ours = _ours(ctx, p)
    for group in p.groups:
        gid = _group_id(ctx, group, domain)
        if not identityapi.in_group(ctx.connection(), gid, str(found["id"])):
            extras["join"].append(gid)
            extras["join_names"].append(group)
        extras["memberships"][group] = "added" if group in ours or gid in extras["join"] else "adopted"
    for group in p.leave_groups:
        left = identityapi.find_named(ctx.connection(), "groups", group, domain)
        if left is None or not identityapi.in_group(ctx.connection(), str(left["id"]), str(found["id"])):
            continue
        if group in ours:
            extras["leave"].append(str(left["id"]))
        else:  # there before Skyfleet declared it: not Skyfleet's to take away
            extras["memberships"][group] = "kept"
    return extras


def _group_id(ctx: SiteContext, name: str, domain: str) -> str:
    found = identityapi.find_named(ctx.connection(), "groups", name, domain)
    if found is None:
        raise TemporarySiteError(f"group {name!r} is not in site {ctx.site_name} yet")
    return str(found["id"])


def diff(p: Payload, seen: dict[str, Any]) -> Plan | None:
    found = seen["found"]
    if p.action == "delete":
        if found is not None and seen.get("leave"):  # a purged, adopted user: out of Skyfleet's groups
            return {"leave_only": found["id"], "leave": seen["leave"]}
        if found is None or not seen["owned"]:
            return None
        if p.purge:
            return {"delete": found["id"]}
        if seen["collection"] == "groups" or not found.get("enabled", True):
            return None
        return {"disable": found["id"]}
    if found is None:
        return {"create": True, "domain": seen.get("domain"),
                **({"join_names": list(p.groups)} if isinstance(p, UserSync) and p.groups else {})}
    differs = list(seen["differs"]) + ([] if seen.get("password_ok", True) else ["password"])
    if differs and not (seen["owned"] or p.force):
        raise PermanentSiteError(
            f"{seen['collection'][:-1]} {p.name!r} already exists in this site and differs "
            f"({', '.join(differs)}); Skyfleet did not create it and does not overwrite it (set force to take it over)")
    if not differs and not seen.get("join") and not seen.get("leave"):
        return None
    return {"update": found["id"], "domain": seen.get("domain"), "fields": seen["differs"],
            "password": not seen.get("password_ok", True),
            "join": seen.get("join", []), "join_names": seen.get("join_names", []), "leave": seen.get("leave", []),
            "memberships": seen.get("memberships", {})}


def apply(ctx: SiteContext, p: Payload, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    collection: identityapi.Collection = COLLECTION[type(p)]
    if "leave_only" in plan:
        for gid in plan["leave"]:
            identityapi.remove_from_group(conn, gid, plan["leave_only"])
        return verdict("kept", remote_id=plan["leave_only"],
                       detail="not created by Skyfleet; kept, and taken out of the groups Skyfleet added it to")
    if "delete" in plan:
        identityapi.delete_object(conn, collection, plan["delete"])
        return verdict("deleted", remote_id=None)
    if "disable" in plan:
        identityapi.update_object(conn, collection, plan["disable"], {"enabled": False})
        return verdict("kept", remote_id=plan["disable"], detail="disabled (purge deletes it)")
    domain = plan.get("domain") or identity_ids.domain_id(ctx, p.domain) or "default"  # as observed
    want = desired(ctx, p, domain)
    joining = _group_ids(ctx, p, domain) if "create" in plan else list(plan["join"])
    adopted = "create" not in plan and isinstance(p, UserSync) and not (p.owned or ctx.created_before)
    _refuse_site_admins(ctx, plan["update"] if adopted else None, p.name, joining,
                        p.admin_roles if isinstance(p, UserSync) else [])
    with opened_password(ctx, p) as password, identity_ids.forgetting(ctx):
        if "create" in plan:
            body = {"name": p.name, "domain_id": domain, **{k: v for k, v in want.items() if v is not None}}
            if password is not None:
                body["password"] = password
            made = identityapi.create_object(conn, collection, body)
            for gid in joining:
                identityapi.add_to_group(conn, gid, str(made["id"]))
            return verdict("in-sync", remote_id=str(made["id"]), created=True, detail="created",
                           **_memberships(p, {g: "added" for g in getattr(p, "groups", [])}))
        changes = {k: want[k] for k in plan["fields"]}
        if plan["password"] and password is not None:
            changes["password"] = password
        if changes:
            identityapi.update_object(conn, collection, plan["update"], changes)
    for gid in plan["join"]:
        identityapi.add_to_group(conn, gid, plan["update"])
    for gid in plan["leave"]:
        identityapi.remove_from_group(conn, gid, plan["update"])
    what = [*plan["fields"], *(["password"] if plan["password"] else []),
            *(["groups"] if plan["join"] or plan["leave"] else [])]
    return verdict("in-sync", remote_id=plan["update"], created=ctx.created_before,
                   detail=f"set {', '.join(what)}", **_memberships(p, plan["memberships"]))


def _memberships(p: Payload, memberships: dict[str, str]) -> dict[str, Any]:
    """The result's record of a user's memberships in the site (folded into the binding)."""
    return {"memberships": memberships} if isinstance(p, UserSync) else {}


def _group_ids(ctx: SiteContext, p: Payload, domain: str) -> list[str]:
    return [_group_id(ctx, group, domain) for group in p.groups] if isinstance(p, UserSync) else []


def _refuse_site_admins(ctx: SiteContext, user_id: str | None, name: str, group_ids: list[str],
                        also: list[str]) -> None:
    """Refuse (permanently) to change a user Skyfleet did not create that holds the admin role in the
    site (take-over, password, memberships), and to add a user to a group that holds it: either would
    hand the declaring caller an admin of the site, which a domain admin's own token is not."""
    if user_id is None and not group_ids:
        return
    conn = ctx.connection()
    admin_roles = identityapi.admin_role_ids(conn, also=also)
    if user_id is not None and identityapi.holds_any_role(conn, "users", user_id, admin_roles):
        raise PermanentSiteError(f"refused: user {name!r} holds the admin role in site {ctx.site_name} and Skyfleet "
                                 "did not create it; Skyfleet never takes over or changes such a user")
    for gid in group_ids:
        if identityapi.holds_any_role(conn, "groups", gid, admin_roles):
            raise PermanentSiteError(f"refused: group {gid} holds the admin role in site {ctx.site_name}; Skyfleet "
                                     "never adds a user to a group that holds the admin role")


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    found = seen["found"]
    if seen["action"] == "delete":
        if found is None:
            return verdict("absent", remote_id=None)
        detail = "not created by Skyfleet; kept" if not seen["owned"] else \
            "kept (purge deletes it)" if seen["collection"] == "groups" else "disabled"
        return verdict("kept", remote_id=str(found["id"]), detail=detail)
    extra = {"memberships": seen["memberships"]} if "memberships" in seen else {}
    return verdict("in-sync", remote_id=str(found["id"]), created=bool(seen["created_before"]), **extra)


def intent(plan: Plan) -> dict[str, Any] | None:
    """What is recorded before ``apply``: a create, and the groups the user is about to join (a retry
    after a crash then knows those memberships as Skyfleet's, not as adopted ones)."""
    out = create_intent(plan) or {}
    if plan.get("join_names"):
        out["join"] = list(plan["join_names"])
    return out or None


def _kind(name: str, what: str, payload: type[Payload]) -> TaskKind[Any, Any]:
    return register(TaskKind(name=name, description=f"Converge a declared Keystone {what} in one site.",
                             payload=payload, observe=observe, diff=diff, apply=apply, summary=summary,
                             intent=intent, persistent=True))


PROJECT = _kind("sync.project", "project", ProjectSync)
USER = _kind("sync.user", "user", UserSync)
GROUP = _kind("sync.group", "group", GroupSync)
