"""``keypair.ensure``: make sure Nova keypair NAME with PUBLIC_KEY exists on the site, for the site
credential's own user (an admin's one-shot operation; tenants declare keypairs through ``sync.keypair``).

Idempotent: absent -> one POST; present with the same key -> nothing; present with another key ->
permanent failure (Skyfleet never replaces what it did not create). Same driver calls and the same
key comparison as ``sync.keypair``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.drivers.openstack import syncapi
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import same_public_key


class KeypairPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9 _.@-]{1,255}$")
    public_key: str = Field(min_length=16, max_length=16_384)


def observe(ctx: SiteContext, payload: KeypairPayload) -> dict[str, Any] | None:
    return syncapi.get_keypair(ctx.connection(), payload.name, user_id=None)


def diff(payload: KeypairPayload, observed: dict[str, Any] | None) -> Plan | None:
    if observed is None:
        return {"create": payload.name}
    if same_public_key(observed.get("public_key"), payload.public_key):
        return None
    raise PermanentSiteError(
        f"keypair {payload.name!r} already exists with another public key; Skyfleet does not replace it")


def apply(ctx: SiteContext, payload: KeypairPayload, _plan: Plan) -> dict[str, Any]:
    created = syncapi.create_keypair(ctx.connection(), name=payload.name, public_key=payload.public_key, user_id=None)
    return {"keypair": created.get("name"), "fingerprint": created.get("fingerprint")}


def summary(observed: dict[str, Any] | None) -> dict[str, Any]:
    return {"keypair": observed.get("name") if observed else None,
            "fingerprint": observed.get("fingerprint") if observed else None}


KIND = register(TaskKind(name="keypair.ensure", description="Create a Nova keypair if it is absent.",
                         payload=KeypairPayload, observe=observe, diff=diff, apply=apply, summary=summary))
