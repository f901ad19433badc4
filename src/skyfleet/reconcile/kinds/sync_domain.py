"""``sync.domain``: converge one declared Keystone domain in one site's own Keystone.

Why it exists: projects, users and groups are declared in a domain; on sites that share nothing that
domain must exist in each Keystone first. The rule, per site, as for projects:

- absent -> created (owned); looked up by its exact name;
- present with the declared description and enabled -> adopted (in sync, not owned);
- present and different -> a failed binding naming the fields, unless Skyfleet owns it (drift:
  repaired) or ``force`` is set (taken over);
- delete: only what Skyfleet created is touched. The domain is disabled; with ``purge`` it is
  disabled and then deleted (Keystone refuses to delete an enabled domain, and deletes what the
  domain holds with it).

The ``Default`` domain and the domains of the site credential's user and project are never touched
(a refusal by id, whatever their names; the API refuses them by name before that).
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from skyfleet.domains.text import Name, Text
from skyfleet.drivers.openstack import identityapi
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, identity_ids, register
from skyfleet.reconcile.kinds.sync_common import SyncPayload, create_intent, verdict
from skyfleet.reconcile.kinds.sync_identity import NAME


class DomainSync(SyncPayload):
    name: Name = Field(pattern=NAME)
    description: Text = Field("", max_length=255)
    enabled: bool = True


def _protected(ctx: SiteContext, found: dict[str, Any] | None) -> None:
    if found is None:
        return
    if found["id"] == "default" or found["id"] in identityapi.own_domain_ids(ctx.connection()):
        raise PermanentSiteError(f"refused: domain {found['name']!r} is the Default domain or the domain of "
                                 f"Skyfleet's own credential in site {ctx.site_name}; Skyfleet never manages it")


def observe(ctx: SiteContext, p: DomainSync) -> dict[str, Any]:
    found = identityapi.find_domain(ctx.connection(), p.name)
    _protected(ctx, found)
    seen: dict[str, Any] = {"found": found, "action": p.action, "owned": p.owned or ctx.created_before,
                            "created_before": ctx.created_before}
    want = {"description": p.description, "enabled": p.enabled}
    seen["want"] = want
    if found is not None:
        seen["differs"] = sorted(k for k, v in want.items() if found.get(k, "" if k == "description" else None) != v)
    return seen


def diff(p: DomainSync, seen: dict[str, Any]) -> Plan | None:
    found = seen["found"]
    if p.action == "delete":
        if found is None or not seen["owned"]:
            return None
        if p.purge:
            return {"delete": found["id"], "enabled": bool(found.get("enabled", True))}
        return {"disable": found["id"]} if found.get("enabled", True) else None
    if found is None:
        return {"create": True}
    if not seen["differs"]:
        return None
    if not (seen["owned"] or p.force):
        raise PermanentSiteError(
            f"domain {p.name!r} already exists in this site and differs ({', '.join(seen['differs'])}); Skyfleet "
            "did not create it and does not overwrite it (set force to take it over)")
    return {"update": found["id"], "fields": seen["differs"]}


def apply(ctx: SiteContext, p: DomainSync, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    if "delete" in plan:
        if plan["enabled"]:  # Keystone deletes only a disabled domain
            identityapi.update_object(conn, "domains", plan["delete"], {"enabled": False})
        identityapi.delete_object(conn, "domains", plan["delete"])
        identity_ids.forget(ctx)  # the identity kinds remember domain ids for a while
        return verdict("deleted", remote_id=None)
    if "disable" in plan:
        identityapi.update_object(conn, "domains", plan["disable"], {"enabled": False})
        return verdict("kept", remote_id=plan["disable"], detail="disabled (purge deletes it)")
    want = {"description": p.description, "enabled": p.enabled}
    if "create" in plan:
        made = identityapi.create_object(conn, "domains", {"name": p.name, **want})
        return verdict("in-sync", remote_id=str(made["id"]), created=True, detail="created")
    identityapi.update_object(conn, "domains", plan["update"], {k: want[k] for k in plan["fields"]})
    return verdict("in-sync", remote_id=plan["update"], created=ctx.created_before,
                   detail=f"set {', '.join(plan['fields'])}")


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    found = seen["found"]
    if seen["action"] == "delete":
        if found is None:
            return verdict("absent", remote_id=None)
        detail = "disabled" if seen["owned"] else "not created by Skyfleet; kept"
        return verdict("kept", remote_id=str(found["id"]), detail=detail)
    return verdict("in-sync", remote_id=str(found["id"]), created=bool(seen["created_before"]))


KIND = register(TaskKind(name="sync.domain", description="Converge a declared Keystone domain in one site.",
                         payload=DomainSync, observe=observe, diff=diff, apply=apply, summary=summary,
                         intent=create_intent, persistent=True))
