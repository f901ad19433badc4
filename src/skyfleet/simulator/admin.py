"""The simulator's own admin HTTP endpoint under /_sim/.

Why it exists: tests and operators in another process (or another language) switch faults, read
request counters, add sites and fetch clouds.yaml entries at run time without the Python API.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from . import admin_keypairs
from .clouds import cloud, clouds_yaml
from .faults import Faults
from .glance import add_generated
from .imagedata import generate
from .nova_servers import place_server
from .state import HELD_KINDS, Fleet, Site, clear_faults, set_faults


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=json.dumps(body).encode(), status=status, content_type="application/json")


def _problem(status: int, message: str) -> web.Response:
    return _json({"error": {"code": status, "message": message}}, status)


def site_info(site: Site) -> dict[str, Any]:
    faults: Faults | None = site.faults
    return {"name": site.name, "region": site.region, "keystone": site.keystone_leader.name,
            "faults": faults.as_dict() if faults else None,
            "requests": sum(site.counters.values()) if site.counters else 0}


def counters_body(site: Site) -> dict[str, Any]:
    rows = [{"method": m, "path": p, "count": n} for (m, p), n in sorted((site.counters or {}).items())]
    return {"site": site.name, "total": sum(r["count"] for r in rows), "counters": rows}


def holders(fleet: Fleet, kind: str, name: str) -> dict[str, Any]:
    """How many sites hold a ``kind`` named ``name`` (any user or project): the simulator's own truth, for a
    benchmark or a test that measures convergence from the outside without asking Skyfleet."""
    if not name:
        raise ValueError("name is required")
    if kind not in HELD_KINDS:
        raise ValueError(f"unknown kind {kind!r}; known: {', '.join(HELD_KINDS)}")
    holding = sum(site.holds(kind, name) for site in fleet.sites.values())
    return {"kind": kind, "name": name, "holding": holding, "sites": len(fleet.sites)}


async def handle(fleet: Fleet, request: web.BaseRequest, path: str) -> web.StreamResponse:
    parts = [p for p in path.split("/") if p]
    method = request.method
    try:
        if parts == ["sites"]:
            if method == "GET":
                return _json({"base_url": fleet.base_url, "sites": [site_info(s) for s in fleet.sites.values()]})
            if method == "POST":
                raw = await request.read()
                body = json.loads(raw) if raw else {}
                site = fleet.add(body.get("name"))
                return _json(site_info(site), 201)
        elif parts == ["faults"] and method == "DELETE":
            clear_faults(fleet)
            return web.Response(status=204)
        elif parts == ["keypairs"] and method == "POST":
            return _json(admin_keypairs.seed(fleet, json.loads(await request.read() or b"{}")), 201)
        elif parts == ["resources"] and method == "GET":
            return _json(holders(fleet, request.query.get("kind", ""), request.query.get("name", "")))
        elif parts == ["clouds"] and method == "GET":
            return _json(clouds_yaml(fleet, user=request.query.get("user", "admin")))
        elif len(parts) >= 3 and parts[0] == "sites":
            return await _site_action(fleet, request, parts[1], parts[2:])
        elif len(parts) == 2 and parts[0] == "sites" and method == "GET":
            return _json(site_info(fleet.get(parts[1])))
    except KeyError as exc:
        return _problem(404, str(exc.args[0]) if exc.args else "not found")
    except ValueError as exc:
        return _problem(400, str(exc))
    return _problem(404, f"no admin route for {method} /_sim{path}")


def _place(site: Site, body: Any) -> dict[str, Any]:
    """A running server placed straight into a project's usage (no quota check, no network)."""
    if not isinstance(body, dict) or not isinstance(body.get("project_id"), str) or not body["project_id"]:
        raise ValueError("a server needs a project_id (string)")
    vcpus, ram = body.get("vcpus", 1), body.get("ram", 512)
    if not isinstance(vcpus, int) or not isinstance(ram, int) or vcpus < 1 or ram < 1:
        raise ValueError("vcpus and ram must be positive integers")
    server = place_server(site, body["project_id"], vcpus=vcpus, ram=ram, name=str(body.get("name", "placed")))
    return {"id": server["id"], "project_id": body["project_id"], "vcpus": vcpus, "ram": ram}


async def _generated(site: Site, body: Any) -> dict[str, Any]:
    """An image whose data is generated when read (:func:`Simulator.add_generated_image`); hashing it
    runs in a thread, so the sites keep answering meanwhile."""
    if not isinstance(body, dict):
        raise ValueError("an image needs a JSON object with its size in bytes")
    allowed = {"size", "seed", "name", "owner", "visibility", "disk_format", "container_format", "properties"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(allowed))}")
    properties = body.get("properties") or {}
    text = ("name", "owner", "visibility", "disk_format", "container_format")
    if not isinstance(properties, dict) or any(not isinstance(body.get(k, ""), str) for k in text):
        raise ValueError("properties must be an object of strings; name, owner, visibility and formats strings")
    data = await asyncio.to_thread(generate, body.get("size", -1), body.get("seed", 0))
    return add_generated(site, data, name=body.get("name", "generated"), owner=body.get("owner"),
                         visibility=body.get("visibility", "shared"), disk_format=body.get("disk_format", "raw"),
                         container_format=body.get("container_format", "bare"), **properties)


async def _site_action(fleet: Fleet, request: web.BaseRequest, name: str, rest: list[str]) -> web.Response:
    site = fleet.get(name)
    method = request.method
    if rest == ["faults"]:
        if method == "GET":
            return _json(site.faults.as_dict() if site.faults else Faults().as_dict())
        if method in ("PUT", "PATCH", "POST"):
            body = json.loads(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("faults must be a JSON object")
            return _json(set_faults(fleet, name, body).as_dict())
        if method == "DELETE":
            clear_faults(fleet, name)
            return web.Response(status=204)
    if rest == ["counters"]:
        if method == "GET":
            return _json(counters_body(site))
        if method == "DELETE":
            site.counters = None
            return web.Response(status=204)
    if len(rest) == 2 and rest[0] == "keypairs" and method == "DELETE":
        admin_keypairs.remove(site, rest[1])
        return web.Response(status=204)
    if rest == ["servers"] and method == "POST":
        return _json(_place(site, json.loads(await request.read() or b"{}")), 201)
    if rest == ["images"] and method == "POST":
        return _json(await _generated(site, json.loads(await request.read() or b"{}")), 201)
    if rest == ["cloud"] and method == "GET":
        return _json(cloud(fleet, name, user=request.query.get("user", "admin")))
    return _problem(404, f"no admin route for {method} /_sim/sites/{name}/{'/'.join(rest)}")
