"""``sync.read``: read keypairs, flavors, security groups or images from a source site, for a one-shot copy
("copy keypair K from site A to sites B and C", Kingbird's os-sync). Read-only: the result carries
each resource's spec in the form the ``sync.*`` kinds take, and the copy then goes through them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from skyfleet.drivers.openstack import imageapi, syncapi
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register, sync_image
from skyfleet.reconcile.kinds.sync_common import IdentityRef, resolve_owner, site_project


class ReadPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource_type: Literal["keypair", "flavor", "security_group", "image"]
    names: list[str] = Field(min_length=1, max_length=100)
    user: IdentityRef | None = None
    project: IdentityRef | None = None
    site_scope: bool = False  # read as the site credential's own user/project (fleet admins only)


def _keypair(ctx: SiteContext, p: ReadPayload, name: str) -> dict[str, Any] | None:
    user_id = resolve_owner(ctx, "users", p.user, site_scope=p.site_scope)
    found = syncapi.get_keypair(ctx.connection(), name, user_id=user_id)
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
    project_id = site_project(ctx, p.project, site_scope=p.site_scope)
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


def _image(ctx: SiteContext, p: ReadPayload, ref: str) -> dict[str, Any] | None:
    """An image by id or name that the owner's project may copy: its own, or a public or community one
    (Kingbird names images by id; a name must be unique among them)."""
    conn = ctx.connection()
    project = site_project(ctx, p.project, site_scope=p.site_scope)
    found = imageapi.get_image(conn, ref)
    candidates = [found] if found is not None else imageapi.find_images(conn, name=ref)
    mine = [i for i in candidates if i.get("owner") == project or i.get("visibility") in ("public", "community")
            or p.site_scope]
    if not mine:
        return None
    if len(mine) > 1:
        raise PermanentSiteError(f"{len(mine)} images are named {ref!r} in source site {ctx.site_name}; use the id")
    image = mine[0]
    properties = {k: v for k, v in image.items() if k not in sync_image.RESERVED and isinstance(v, str)
                  and not k.startswith("os_") and k not in ("self", "file", "schema")}
    visibility = image.get("visibility") if image.get("visibility") in ("private", "shared") or p.site_scope \
        else "private"
    return {"name": image.get("name") or image["id"], "source": {"site_id": ctx.site_id, "site_name": ctx.site_name,
                                                                "image_id": image["id"]},
            "disk_format": image.get("disk_format"), "container_format": image.get("container_format"),
            "min_disk": image.get("min_disk") or 0, "min_ram": image.get("min_ram") or 0, "visibility": visibility,
            "tags": list(image.get("tags") or []), "properties": properties}


READERS = {"keypair": _keypair, "flavor": _flavor, "security_group": _group, "image": _image}


def observe(ctx: SiteContext, p: ReadPayload) -> dict[str, Any]:
    specs = {}
    for name in p.names:
        spec = READERS[p.resource_type](ctx, p, name)
        if spec is None:
            raise PermanentSiteError(f"no {p.resource_type} {name!r} in source site {ctx.site_name}")
        specs[name] = spec
    if p.resource_type == "image":
        specs.update(_dependents(ctx, p, specs))
    return {"specs": specs}


def _dependents(ctx: SiteContext, p: ReadPayload, specs: dict[str, Any]) -> dict[str, Any]:
    """The kernel and ramdisk images an AMI image names (``kernel_id``, ``ramdisk_id``): copied with it,
    as Kingbird does, so that the copy boots on the target."""
    found: dict[str, Any] = {}
    for spec in list(specs.values()):
        for key in ("kernel_id", "ramdisk_id"):
            ref = spec["properties"].get(key)
            if ref and ref not in specs and ref not in found:
                dep = _image(ctx, p, ref)
                if dep is None:
                    raise PermanentSiteError(f"image {spec['name']!r} names {key} {ref}, which is not in source site "
                                             f"{ctx.site_name}")
                found[ref] = dep
    return found


def diff(_p: ReadPayload, _seen: dict[str, Any]) -> Plan | None:
    return None


def apply(_ctx: SiteContext, _p: ReadPayload, _plan: Plan) -> dict[str, Any]:
    return {}


KIND = register(TaskKind(name="sync.read", description="Read resources from a source site for a copy.",
                         payload=ReadPayload, observe=observe, diff=diff, apply=apply,
                         summary=lambda seen: dict(seen)))
