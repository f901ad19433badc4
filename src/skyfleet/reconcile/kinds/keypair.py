"""``keypair.ensure``: make sure Nova keypair NAME with PUBLIC_KEY exists on the site.

Idempotent: absent -> one POST; present with the same key -> nothing; present with another key ->
permanent failure (Skyfleet never replaces what it did not create). The keypair sync feature builds
on this kind (bindings, ownership rows, deletion).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.drivers.openstack.compute import Keypair, create_keypair, get_keypair
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register


class KeypairPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9 _.@-]{1,255}$")
    public_key: str = Field(min_length=16, max_length=16_384)


def observe(ctx: SiteContext, payload: KeypairPayload) -> Keypair | None:
    return get_keypair(ctx.connection(), payload.name)


def _same_key(a: str | None, b: str) -> bool:
    return a is not None and a.split()[:2] == b.split()[:2]


def diff(payload: KeypairPayload, observed: Keypair | None) -> Plan | None:
    if observed is None:
        return {"create": payload.name}
    if _same_key(observed.public_key, payload.public_key):
        return None
    raise PermanentSiteError(
        f"keypair {payload.name!r} already exists with another public key (fingerprint "
        f"{observed.fingerprint}); Skyfleet does not replace it"
    )


def apply(ctx: SiteContext, payload: KeypairPayload, _plan: Plan) -> dict[str, Any]:
    created = create_keypair(ctx.connection(), name=payload.name, public_key=payload.public_key)
    return {"keypair": created.name, "fingerprint": created.fingerprint}


def summary(observed: Keypair | None) -> dict[str, Any]:
    return {"keypair": observed.name if observed else None,
            "fingerprint": observed.fingerprint if observed else None}


KIND = register(TaskKind(name="keypair.ensure", description="Create a Nova keypair if it is absent.",
                         payload=KeypairPayload, observe=observe, diff=diff, apply=apply, summary=summary))
