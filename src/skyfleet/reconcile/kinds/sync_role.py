"""``sync.role_assignment``: converge one declared role assignment (a user or a group holds a role,
by name, on a project or on a domain, directly or inherited) in one site's own Keystone. The user
or group may live in another domain than the target (``user_domain``, ``group_domain``,
``project_domain``; each defaults to ``domain``): Keystone grants across domains natively.

Why it exists: the objects a fleet admin declares once are of little use until someone holds a role
on them. Rule, per site: the target is the named project in ``domain``, or, when no project is
named, the domain itself. ``inherited`` makes it Keystone's OS-INHERIT grant, which reaches the
projects of the domain (or below the project) instead of the target itself. The role is looked up
by name; a site without it fails that binding naming the role, unless ``create_missing_roles`` is
set: then Skyfleet creates the role there (never ``admin``) and says so in the binding. A project,
user or group not in the site yet is a temporary failure (its own task creates it; the task
retries). Absent grant -> granted (owned); present -> in sync (adopted unless an earlier attempt of
this task granted it). Delete revokes only the grants Skyfleet made (``purge`` changes nothing
here: an adopted grant is never revoked; a role Skyfleet created is kept, other grants may use it).
The site credential's own user and project are refused.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from skyfleet.domains.text import Name
from skyfleet.drivers.openstack import identityapi, syncapi
from skyfleet.errors import PermanentSiteError, TemporarySiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, identity_ids, register
from skyfleet.reconcile.kinds.sync_common import SyncPayload, create_intent, verdict
from skyfleet.reconcile.kinds.sync_identity import NAME, missing_domain

PROTECTED_ROLES = frozenset({"admin"})  # compared without case: policies read ``Admin`` as ``admin``
CREATED_ROLE = "Created by Skyfleet for a declared role assignment"


class RoleAssignmentSync(SyncPayload):
    name: Name = Field(min_length=1, max_length=255)  # the declaration's own name (what it grants)
    user: Name | None = Field(None, pattern=NAME)
    group: Name | None = Field(None, pattern=NAME)
    project: Name | None = Field(None, pattern=NAME)  # None: the target is the domain itself
    role: Name = Field(pattern=NAME)
    domain: Name = Field("Default", pattern=NAME)  # no ":" here: the domain is part of the name
    user_domain: Name | None = Field(None, pattern=NAME)  # the user's domain when not ``domain``
    group_domain: Name | None = Field(None, pattern=NAME)  # the group's domain when not ``domain``
    project_domain: Name | None = Field(None, pattern=NAME)  # the project's domain when not ``domain``
    inherited: bool = False
    create_missing_roles: bool = False
    domain_declared: bool = False  # Skyfleet declares the domain too: wait for it, do not fail
    declared_domains: list[Name] = Field(default_factory=list)  # of its domains, those Skyfleet declares

    @model_validator(mode="after")
    def _domains_name_their_object(self) -> RoleAssignmentSync:
        for field, needs in (("user_domain", "user"), ("group_domain", "group"), ("project_domain", "project")):
            if getattr(self, field) is not None and getattr(self, needs) is None:
                raise ValueError(f"{field} is the domain of the assignment's {needs}, and it names no {needs}")
        return self

    @property
    def actor_domain(self) -> str:
        return (self.user_domain if self.user else self.group_domain) or self.domain

    @property
    def target_domain(self) -> str:
        return (self.project_domain or self.domain) if self.project else self.domain


def _actor(p: RoleAssignmentSync) -> tuple[identityapi.Actor, str]:
    if p.user:
        return "users", p.user
    if p.group:
        return "groups", p.group
    raise PermanentSiteError("a role assignment names a user or a group")


def _need(ctx: SiteContext, collection: identityapi.Collection, name: str, domain: str) -> str | None:
    found = identityapi.find_named(ctx.connection(), collection, name, domain)
    return None if found is None else str(found["id"])


def _domain_ids(ctx: SiteContext, p: RoleAssignmentSync) -> dict[str, str | None]:
    """The site's id of each domain the assignment names (its actor's and its target's), by name."""
    return {name: identity_ids.domain_id(ctx, name) for name in {p.actor_domain, p.target_domain}}


def observe(ctx: SiteContext, p: RoleAssignmentSync) -> dict[str, Any]:
    if p.role.strip().lower() in PROTECTED_ROLES and p.action != "delete":  # before asking the site anything
        raise PermanentSiteError(f"refused: Skyfleet never grants or creates the role {p.role!r} (admin roles "
                                 f"are protected) in site {ctx.site_name}")
    conn = ctx.connection()
    identity_ids.begin()
    actor, actor_name = _actor(p)
    domains = _domain_ids(ctx, p)
    if None in domains.values() and p.action == "delete":  # no domain, no grant in it to revoke
        return {"action": p.action, "held": False, "owned": p.owned, "created_before": ctx.created_before}
    for name in (p.target_domain, p.actor_domain):
        if domains[name] is None:
            declared = name in p.declared_domains or (p.domain_declared and name == p.domain)
            raise missing_domain(ctx, name, declared)
    domain, actor_domain = str(domains[p.target_domain]), str(domains[p.actor_domain])
    role_id = identity_ids.role_id(ctx, p.role)
    if role_id is None and p.action != "delete" and not p.create_missing_roles:
        raise PermanentSiteError(f"no role {p.role!r} in site {ctx.site_name}; Skyfleet does not create "
                                 "roles unless create_missing_roles is set")
    target: identityapi.Target = "projects" if p.project else "domains"
    target_id = _need(ctx, "projects", p.project, domain) if p.project else domain
    actor_id = _need(ctx, actor, actor_name, actor_domain)
    seen: dict[str, Any] = {"action": p.action, "actor": actor, "actor_id": actor_id, "target": target,
                            "target_id": target_id, "inherited": p.inherited, "role_id": role_id,
                            "owned": p.owned or ctx.created_before, "created_before": ctx.created_before}
    if target_id is None or actor_id is None or role_id is None:
        if p.action == "delete" or (role_id is None and target_id is not None and actor_id is not None):
            seen["held"] = False  # a delete with nothing to revoke, or a role still to create
            return seen
        missing = f"project {p.project!r} (domain {p.target_domain!r})" if target_id is None \
            else f"{actor[:-1]} {actor_name!r} (domain {p.actor_domain!r})"
        raise TemporarySiteError(f"{missing} is not in site {ctx.site_name} yet")
    own_user, own_project = syncapi.current_ids(conn)
    if (target == "projects" and target_id == own_project) or actor_id == own_user:
        raise PermanentSiteError(f"refused: Skyfleet never changes the roles of its own credential's user or "
                                 f"project in site {ctx.site_name}")
    seen["held"] = identityapi.has_grant(conn, **_ids(seen))
    return seen


def _ids(seen: dict[str, Any]) -> dict[str, Any]:
    return {key: seen[key] for key in ("target", "target_id", "actor", "actor_id", "role_id", "inherited")}


def diff(p: RoleAssignmentSync, seen: dict[str, Any]) -> Plan | None:
    if p.action == "delete":
        return {"revoke": True, **_ids(seen)} if seen["held"] and seen["owned"] else None
    if seen["held"]:
        return None
    return {"create": True, **_ids(seen), **({"create_role": p.role} if seen["role_id"] is None else {})}


def apply(ctx: SiteContext, p: RoleAssignmentSync, plan: Plan) -> dict[str, Any]:
    ids = _ids(plan)
    conn = ctx.connection()
    if plan.get("revoke"):
        with identity_ids.forgetting(ctx):
            identityapi.revoke(conn, **ids)
        return verdict("deleted", remote_id=None)
    detail = "granted"
    if plan.get("create_role"):
        if str(plan["create_role"]).strip().lower() in PROTECTED_ROLES:  # observe refuses it already; never reached
            raise PermanentSiteError(f"Skyfleet never creates the {plan['create_role']!r} role")
        ids["role_id"] = identityapi.create_role(conn, plan["create_role"], CREATED_ROLE)
        detail = f"created role {plan['create_role']!r} (owned by Skyfleet) and granted it"
    with identity_ids.forgetting(ctx):
        identityapi.grant(conn, **ids)
    return verdict("in-sync", remote_id=_remote(ids), created=True, detail=detail)


def _remote(ids: dict[str, Any]) -> str:
    """``project/actor/actor_id/role`` for a direct project grant (as before domains and inheritance
    existed), otherwise prefixed with the target collection and suffixed with ``/inherited``."""
    core = f"{ids['target_id']}/{ids['actor']}/{ids['actor_id']}/{ids['role_id']}"
    if ids["target"] == "projects" and not ids["inherited"]:
        return core
    return f"{ids['target']}/{core}" + ("/inherited" if ids["inherited"] else "")


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    if seen["action"] == "delete":
        if not seen["held"]:
            return verdict("absent", remote_id=None)
        return verdict("kept", remote_id=None, detail="not granted by Skyfleet; kept")
    return verdict("in-sync", remote_id=_remote(seen), created=bool(seen["created_before"]))


KIND = register(TaskKind(name="sync.role_assignment", description="Converge a declared role assignment in one site.",
                         payload=RoleAssignmentSync, observe=observe, diff=diff, apply=apply, summary=summary,
                         intent=create_intent, persistent=True))
