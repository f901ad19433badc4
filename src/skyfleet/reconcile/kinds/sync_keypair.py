"""``sync.keypair``: converge one desired keypair in one site (ensure or delete).

The copy belongs to the user named by ``user`` (the caller's user mapped onto the site), or to the
site credential's own user when ``user`` is unset; Nova 2.10 lets an admin act for another user.
Absent -> create; same public key -> in sync (adopted when Skyfleet did not create it); another
key -> replaced only when Skyfleet owns the copy or ``force`` is set, else a failed binding. A
create is recorded on the task before the call, so the attempt after a crash that finds the key
knows it made it (owned), rather than adopting its own copy.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from skyfleet.drivers.openstack import syncapi
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import (
    IdentityRef,
    SyncPayload,
    create_intent,
    created_earlier,
    refuse,
    resolve_owner,
    same_public_key,
    verdict,
)


class KeypairSync(SyncPayload):
    name: str = Field(pattern=r"^[A-Za-z0-9 _.@-]{1,255}$")
    public_key: str = Field(min_length=16, max_length=16_384)
    user: IdentityRef | None = None


def observe(ctx: SiteContext, p: KeypairSync) -> dict[str, Any]:
    user_id = resolve_owner(ctx, "users", p.user, site_scope=p.site_scope)
    found = syncapi.get_keypair(ctx.connection(), p.name, user_id=user_id)
    return {"user_id": user_id, "found": found, "action": p.action,
            "same": found is not None and same_public_key(found.get("public_key"), p.public_key),
            "may_delete": p.owned or p.purge or ctx.created_before, "created_before": ctx.created_before}


def diff(p: KeypairSync, seen: dict[str, Any]) -> Plan | None:
    found = seen["found"]
    if p.action == "delete":
        return {"delete": True, "user_id": seen["user_id"]} if found is not None and seen["may_delete"] else None
    if found is None:
        return {"create": True, "user_id": seen["user_id"]}
    if seen["same"]:
        return None
    if not (p.owned or p.force or seen["created_before"]):
        raise refuse("keypair", p.name, "another public key")
    return {"replace": True, "user_id": seen["user_id"]}


def apply(ctx: SiteContext, p: KeypairSync, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    user_id = plan["user_id"]
    if plan.get("delete"):
        syncapi.delete_keypair(conn, p.name, user_id=user_id)
        return verdict("deleted", remote_id=None)
    if plan.get("replace"):
        syncapi.delete_keypair(conn, p.name, user_id=user_id)
    made = syncapi.create_keypair(conn, name=p.name, public_key=p.public_key, user_id=user_id)
    return verdict("in-sync", remote_id=p.name, created=True, user_id=made.get("user_id") or user_id,
                   fingerprint=made.get("fingerprint"), detail="replaced" if plan.get("replace") else "created")


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    found = seen["found"]
    if seen["action"] == "delete":
        return verdict("absent" if found is None else "kept", remote_id=None,
                       detail="" if found is None else "not created by Skyfleet; kept (use purge)")
    return verdict("in-sync", remote_id=found["name"], user_id=found.get("user_id") or seen["user_id"],
                   fingerprint=found.get("fingerprint"), **created_earlier(seen))


KIND = register(TaskKind(name="sync.keypair", description="Converge a desired keypair in one site.",
                         payload=KeypairSync, observe=observe, diff=diff, apply=apply, summary=summary,
                         intent=create_intent, persistent=True))
