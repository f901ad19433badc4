"""Declared identity on top of the desired-resource machinery of ``domains/sync``: the rules a
declaration must meet before it is stored, and the user's write-only password.

Why it exists: projects, users, groups and role assignments are desired resources (``SyncResource``
of kinds ``project``, ``user``, ``group``, ``role_assignment``) converged by the same engine, audit
and bindings as keypairs. What differs is decided here, once:

- a declaration never names the user or project of a placed site's own credential (Skyfleet's
  service identity), never grants the ``admin`` role, and never declares the ``Default`` domain or
  the domain of a placed site's credential (400);
- a user's password is kept out of the spec: it is sealed with the SecretBox into the resource's
  options (``password_box``), never returned, never logged; ``null`` means an externally managed
  password;
- a user's group memberships follow its ``groups`` list: the groups dropped from it are remembered
  (``leave_groups``) so that each site takes the user out of them where Skyfleet added the
  membership (the binding's ``memberships`` record; an adopted membership is kept);
- a role assignment's name is derived from what it grants (actor, project or domain, role,
  inheritance, and the actor's domain when it differs from the target's), so a second ``PUT`` finds
  the first, however its domains were spelt.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from skyfleet.domains.sync.models import DELETING, SyncResource
from skyfleet.domains.sync.service import placed_sites
from skyfleet.errors import Invalid
from skyfleet.secrets import SecretBox

SPEC_FIELDS: dict[str, tuple[str, ...]] = {
    "project": ("name", "domain", "description", "enabled"),
    "user": ("name", "domain", "description", "email", "enabled", "default_project", "groups", "password"),
    "group": ("name", "domain", "description"),
    "role_assignment": ("user", "group", "project", "role", "domain", "user_domain", "group_domain", "project_domain",
                        "inherited", "create_missing_roles"),
    "domain": ("name", "description", "enabled"),
}
PROTECTED_ROLES = frozenset({"admin"})  # compared without case: policies read ``Admin`` as ``admin``
UNSET: Any = object()


def split_password(kind: str, spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """``spec`` without its password, and the password (``UNSET`` when the spec does not name it)."""
    unknown = set(spec) - set(SPEC_FIELDS[kind])
    if unknown:
        raise Invalid(f"unknown field(s) in spec: {sorted(unknown)}; allowed: {list(SPEC_FIELDS[kind])}")
    rest = {k: v for k, v in spec.items() if k != "password"}
    password = spec.get("password", UNSET)
    if password is not UNSET and password is not None and (
            not isinstance(password, str) or not 1 <= len(password) <= 4096):
        raise Invalid("spec.password: a string of 1 to 4096 characters, or null (managed outside Skyfleet)")
    return rest, password


def assignment_domains(spec: dict[str, Any]) -> tuple[str, str]:
    """The domain the assignment's user or group is looked up in, and the domain of its target (the
    project's domain, or the domain granted on). Each defaults to ``domain``, itself ``Default``."""
    domain = spec.get("domain") or "Default"
    actor = (spec.get("user_domain") if spec.get("user") else spec.get("group_domain")) or domain
    target = (spec.get("project_domain") or domain) if spec.get("project") else domain
    return str(actor), str(target)


def role_assignment_name(spec: dict[str, Any]) -> str:
    """What the assignment grants, as its name: ``user:alice:acme:member`` (or ``group:...``) on a
    project, with ``@Domain`` (the project's domain) appended outside ``Default``;
    ``user:alice:domain:Acme:member`` on the domain itself (no project named); prefixed with
    ``inherited:`` for an OS-INHERIT grant. An actor of another domain than the target's carries
    it as ``:in:<domain>``: ``user:alice:in:A:lab:reader@B``, ``user:alice:in:A:domain:B:reader``.
    Names hold no ``:``, so the number of parts tells the forms apart."""
    user, group = spec.get("user"), spec.get("group")
    if (user is None) == (group is None):
        raise Invalid("a role assignment names exactly one of user, group")
    if not spec.get("role"):
        raise Invalid("a role assignment names a role")
    for field, needs in (("user_domain", "user"), ("group_domain", "group"), ("project_domain", "project")):
        if spec.get(field) and not spec.get(needs):
            raise Invalid(f"{field} is the domain of the assignment's {needs}, and it names no {needs}"
                          + ("; without a project the target is the domain named by domain"
                             if needs == "project" else ""))
    actor_domain, domain = assignment_domains(spec)
    actor = (f"user:{user}" if user else f"group:{group}") + ("" if actor_domain == domain else f":in:{actor_domain}")
    prefix = "inherited:" if spec.get("inherited") else ""
    if not spec.get("project"):
        return f"{prefix}{actor}:domain:{domain}:{spec['role']}"
    return f"{prefix}{actor}:{spec['project']}:{spec['role']}" + ("" if domain == "Default" else f"@{domain}")


def check_protected(session: Session, *, kind: str, spec: dict[str, Any], placement: dict[str, Any],
                    service: tuple[str, str] = ("", "")) -> None:
    """400 when a declaration names a placed site's own credential's user or project, Skyfleet's own
    service user or its project in the home Keystone (``service``: the user and project names that
    validate tokens), or the admin role."""
    users: set[str] = {service[0]}
    projects: set[str] = {service[1]}
    for site in placed_sites(session, placement):
        users.add(str(site.auth_public.get("username") or ""))
        projects.add(str(site.auth_public.get("project_name") or ""))
    domains: set[str] = {"default"}
    for site in placed_sites(session, placement):
        for key in ("user_domain_name", "project_domain_name", "domain_name"):
            if site.auth_public.get(key):
                domains.add(str(site.auth_public[key]).lower())
    users.discard("")
    projects.discard("")
    if kind == "domain" and str(spec.get("name") or "").lower() in domains:
        raise Invalid(f"domain {spec.get('name')!r} is the Default domain or the domain of a placed site's own "
                      "credential; Skyfleet never manages it")
    named_user = spec.get("name") if kind == "user" else spec.get("user") if kind == "role_assignment" else None
    named_project = spec.get("name") if kind == "project" else spec.get("project") \
        if kind == "role_assignment" else None
    if named_user in users:
        raise Invalid(f"user {named_user!r} is the user of a placed site's own credential or Skyfleet's own "
                      "service user; Skyfleet never manages it")
    if named_project in projects:
        raise Invalid(f"project {named_project!r} is the project of a placed site's own credential or of "
                      "Skyfleet's own service user; Skyfleet never manages it")
    if kind == "role_assignment" and str(spec.get("role") or "").strip().lower() in PROTECTED_ROLES:
        raise Invalid(f"role {spec['role']!r} is not granted through Skyfleet (admin roles are protected)")


def objects_in_domain(session: Session, name: str) -> list[SyncResource]:
    """The declared projects, users, groups and role assignments that live in the domain ``name``
    (converged again when the domain itself is declared, so that they wait for it)."""
    rows = session.execute(select(SyncResource).where(
        SyncResource.kind.in_(("project", "user", "group", "role_assignment")),
        SyncResource.state != DELETING)).scalars().all()
    return [r for r in rows if name in domains_of(r)]


def domains_of(resource: SyncResource) -> set[str]:
    """The domains a declared object lives in or refers to (a role assignment: its actor's and its
    target's, which may differ)."""
    if resource.kind == "role_assignment":
        return set(assignment_domains(resource.spec))
    return {str(resource.spec.get("domain") or "Default")}


def seal_password(resource: SyncResource, box: SecretBox, password: Any) -> None:
    """Store (or clear, for None) the user's password sealed; ``UNSET`` leaves it as it is."""
    if password is UNSET:
        return
    options = {k: v for k, v in resource.options.items() if k != "password_box"}
    if password is not None:
        options["password_box"] = box.encrypt({"password": password})
    resource.options = options


def track_left_groups(resource: SyncResource, new_spec: dict[str, Any] | None) -> None:
    """Remember the groups a user's declaration no longer lists, so every site takes the user out of
    them (a group listed again is forgotten from that list)."""
    if resource.kind != "user" or new_spec is None:
        return
    before, after = set(resource.spec.get("groups") or []), set(new_spec.get("groups") or [])
    left = (set(resource.options.get("leave_groups") or []) | (before - after)) - after
    resource.options = {**resource.options, "leave_groups": sorted(left)}
