"""``sync.flavor``: converge one desired flavor in one site (ensure or delete).

Flavors are immutable in Nova: when vcpus, ram, disk, ephemeral, swap, rxtx factor, visibility or id
differ, the flavor is replaced (deleted and created again) only if ``replace`` is set, else the
binding reports the drift (out-of-sync). Extra specs and the project access list are mutable and
repaired in place. A different pre-existing flavor of the same name is never touched without
``force``. Access entries are global projects mapped onto the site (see ``sync_common``). A create
is recorded on the task before the call (see ``sync_keypair``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from skyfleet.domains.quotas.schemas import MAX_LIMIT as MAX_INT
from skyfleet.domains.text import Name
from skyfleet.drivers.openstack import syncapi
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register
from skyfleet.reconcile.kinds.sync_common import (
    IdentityRef,
    SyncPayload,
    create_intent,
    created_earlier,
    refuse,
    resolve,
    verdict,
)


class FlavorSync(SyncPayload):
    name: Name = Field(min_length=1, max_length=255)
    id: Name | None = Field(None, max_length=255)
    vcpus: int = Field(ge=1, le=MAX_INT)  # Nova keeps these in signed 32-bit columns
    ram: int = Field(ge=1, le=MAX_INT)
    disk: int = Field(0, ge=0, le=MAX_INT)
    ephemeral: int = Field(0, ge=0, le=MAX_INT)
    swap: int = Field(0, ge=0, le=MAX_INT)
    rxtx_factor: float = Field(1.0, gt=0, le=MAX_INT, allow_inf_nan=False)
    is_public: bool = True
    extra_specs: dict[Annotated[Name, Field(max_length=255)], Annotated[Name, Field(max_length=255)]] = Field(
        default_factory=dict, max_length=256)
    access: list[IdentityRef] = Field(default_factory=list, max_length=1000)
    replace: bool = False


def _core(p: FlavorSync) -> dict[str, Any]:
    core: dict[str, Any] = {"vcpus": p.vcpus, "ram": p.ram, "disk": p.disk, "ephemeral": p.ephemeral, "swap": p.swap,
            "rxtx_factor": float(p.rxtx_factor), "is_public": p.is_public}
    if p.id:
        core["id"] = p.id
    return core


def _observed_core(found: dict[str, Any]) -> dict[str, Any]:
    return {"vcpus": found.get("vcpus"), "ram": found.get("ram"), "disk": found.get("disk"),
            "ephemeral": found.get("OS-FLV-EXT-DATA:ephemeral", 0), "swap": int(found.get("swap") or 0),
            "rxtx_factor": float(found.get("rxtx_factor") or 1.0),
            "is_public": bool(found.get("os-flavor-access:is_public", True)), "id": found.get("id")}


def listed_drift(p: FlavorSync, found: dict[str, Any] | None) -> bool:
    """Whether ``found`` (one row of a flavor listing at compute 2.61) differs from ``p``: gone, renamed,
    another core field, or other extra specs (when the row carries them). The access list of a private
    flavor is not in a listing: the periodic converge pass compares it."""
    if found is None or found.get("name") != p.name:
        return True
    have = _observed_core(found)
    if any(have.get(k) != v for k, v in _core(p).items()):
        return True
    return "extra_specs" in found and dict(found["extra_specs"] or {}) != dict(p.extra_specs)


def observe(ctx: SiteContext, p: FlavorSync) -> dict[str, Any]:
    found = syncapi.find_flavor(ctx.connection(), p.name)
    seen: dict[str, Any] = {"found": found, "action": p.action, "replace": p.replace,
                            "may_delete": p.owned or p.purge or ctx.created_before,
                            "created_before": ctx.created_before}
    if found is None or p.action == "delete":
        return seen
    access = sorted({pid for ref in p.access if (pid := resolve(ctx, "projects", ref))}) if not p.is_public else []
    have = _observed_core(found)
    seen["access"] = access
    seen["core_diff"] = sorted(k for k, v in _core(p).items() if have.get(k) != v)
    seen["specs_set"] = {k: v for k, v in p.extra_specs.items() if found["extra_specs"].get(k) != v}
    seen["specs_unset"] = sorted(set(found["extra_specs"]) - set(p.extra_specs))
    seen["access_add"] = sorted(set(access) - set(found["access"])) if not p.is_public else []
    seen["access_remove"] = sorted(set(found["access"]) - set(access)) if not p.is_public else []
    return seen


def _mutable(seen: dict[str, Any]) -> bool:
    return bool(seen["specs_set"] or seen["specs_unset"] or seen["access_add"] or seen["access_remove"])


def diff(p: FlavorSync, seen: dict[str, Any]) -> Plan | None:
    found = seen["found"]
    if p.action == "delete":
        return {"delete": found["id"]} if found is not None and seen["may_delete"] else None
    if found is None:
        return {"create": True}
    owned = p.owned or seen["created_before"]
    if not _mutable(seen) and (not seen["core_diff"] or (owned and not p.replace)):
        return None  # in sync, or drift that only a replace could repair (reported by summary)
    if not (owned or p.force):
        what = ", ".join(seen["core_diff"] + (["extra specs or access"] if _mutable(seen) else []))
        raise refuse("flavor", p.name, what)
    if seen["core_diff"] and p.replace:
        return {"replace": found["id"]}
    return {"repair": found["id"], **{k: seen[k] for k in ("specs_set", "specs_unset", "access_add",
                                                            "access_remove", "core_diff", "created_before")}}


def _create(ctx: SiteContext, p: FlavorSync) -> dict[str, Any]:
    conn = ctx.connection()
    body: dict[str, Any] = {"name": p.name, "vcpus": p.vcpus, "ram": p.ram, "disk": p.disk,
                            "OS-FLV-EXT-DATA:ephemeral": p.ephemeral, "swap": p.swap,
                            "rxtx_factor": p.rxtx_factor, "os-flavor-access:is_public": p.is_public}
    if p.id:
        body["id"] = p.id
    made = syncapi.create_flavor(conn, body)
    syncapi.set_extra_specs(conn, made["id"], p.extra_specs)
    if not p.is_public:
        for pid in sorted({pid for ref in p.access if (pid := resolve(ctx, "projects", ref))}):
            syncapi.flavor_access(conn, made["id"], pid, add=True)
    return made


def apply(ctx: SiteContext, p: FlavorSync, plan: Plan) -> dict[str, Any]:
    conn = ctx.connection()
    if "delete" in plan:
        syncapi.delete_flavor(conn, plan["delete"])
        return verdict("deleted", remote_id=None)
    if "replace" in plan:
        syncapi.delete_flavor(conn, plan["replace"])
    if "create" in plan or "replace" in plan:
        made = _create(ctx, p)
        return verdict("in-sync", remote_id=made["id"], created=True,
                       detail="replaced" if "replace" in plan else "created")
    fid = plan["repair"]
    syncapi.set_extra_specs(conn, fid, plan["specs_set"])
    for key in plan["specs_unset"]:
        syncapi.unset_extra_spec(conn, fid, key)
    for pid in plan["access_add"]:
        syncapi.flavor_access(conn, fid, pid, add=True)
    for pid in plan["access_remove"]:
        syncapi.flavor_access(conn, fid, pid, add=False)
    if plan["core_diff"]:
        return _drift(fid, plan["core_diff"])
    return verdict("in-sync", remote_id=fid, detail="repaired extra specs / access",
                   created=bool(plan.get("created_before")))


def _drift(fid: str, fields: list[str]) -> dict[str, Any]:
    return verdict("out-of-sync", remote_id=fid, drift=fields,
                   detail=f"immutable fields differ ({', '.join(fields)}); set replace to recreate the flavor")


def summary(seen: dict[str, Any]) -> dict[str, Any]:
    found = seen["found"]
    if seen["action"] == "delete":
        return verdict("absent" if found is None else "kept", remote_id=None,
                       detail="" if found is None else "not created by Skyfleet; kept (use purge)")
    if seen.get("core_diff"):
        return {**_drift(found["id"], seen["core_diff"]), "created": bool(seen.get("created_before"))}
    return verdict("in-sync", remote_id=found["id"], **created_earlier(seen))


KIND = register(TaskKind(name="sync.flavor", description="Converge a desired flavor in one site.",
                         payload=FlavorSync, observe=observe, diff=diff, apply=apply, summary=summary,
                         intent=create_intent, persistent=True))
