"""``sync.read``: read keypairs, flavors or security groups from a source site, for a one-shot copy
("copy keypair K from site A to sites B and C", Kingbird's os-sync). Read-only: the result carries
each resource's spec in the form the ``sync.*`` kinds take, and the copy then goes through them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.drivers.openstack import syncapi
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import IdentityRef, resolve


class ReadPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_type: Literal["keypair", "flavor", "security_group"]
    names: list[str] = Field(min_length=1, max_length=100)
    user: IdentityRef | None = None
    project: IdentityRef | None = None


def _keypair(ctx: SiteContext, p: ReadPayload, name: str) -> dict[str, Any] | None:
    found = syncapi.get_keypair(ctx.connection(), name, user_id=resolve(ctx, "users", p.user))
    return None if found is None else {"name": found["name"], "public_key": found["public_key"]}


def _flavor(ctx: SiteContext, _p: ReadPayload, name: str) -> dict[str, Any] | None:
    f = syncapi.find_flavor(ctx.connection(), name)
    if f is None:
        return None
    return {"name": f["name"], "id": f["id"], "vcpus": f["vcpus"], "ram": f["ram"], "disk": f["disk"],
            "ephemeral": f.get("OS-FLV-EXT-DATA:ephemeral", 0), "swap": int(f.get("swap") or 0),
            "rxtx_factor": float(f.get("rxtx_factor") or 1.0),
            "is_public": bool(f.get("os-flavor-access:is_public", True)), "extra_specs": f["extra_specs"],
            "access": [{"id": pid} for pid in f["access"]]}


def _group(ctx: SiteContext, p: ReadPayload, name: str) -> dict[str, Any] | None:
    project_id = resolve(ctx, "projects", p.project) or syncapi.current_ids(ctx.connection())[1]
    g = syncapi.find_security_group(ctx.connection(), name, str(project_id))
    if g is None:
        return None
    rules = []
    for r in g.get("security_group_rules", []):
        rule = {k: r.get(k) for k in ("direction", "ethertype", "protocol", "port_range_min", "port_range_max",
                                      "remote_ip_prefix") if r.get(k) is not None}
        if r.get("remote_group_id"):
            if r["remote_group_id"] != g["id"]:
                continue  # only self-references can be carried by name without reading other groups
            rule["remote_group"] = name
        rules.append(rule)
    return {"name": name, "description": g.get("description") or "", "rules": rules, "default_egress": False}


READERS = {"keypair": _keypair, "flavor": _flavor, "security_group": _group}


def observe(ctx: SiteContext, p: ReadPayload) -> dict[str, Any]:
    specs = {}
    for name in p.names:
        spec = READERS[p.resource_type](ctx, p, name)
        if spec is None:
            raise PermanentSiteError(f"no {p.resource_type} {name!r} in source site {ctx.site_name}")
        specs[name] = spec
    return {"specs": specs}


def diff(_p: ReadPayload, _seen: dict[str, Any]) -> Plan | None:
    return None


def apply(_ctx: SiteContext, _p: ReadPayload, _plan: Plan) -> dict[str, Any]:
    return {}


KIND = register(TaskKind(name="sync.read", description="Read resources from a source site for a copy.",
                         payload=ReadPayload, observe=observe, diff=diff, apply=apply,
                         summary=lambda seen: dict(seen)))
