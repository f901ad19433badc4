"""``skyfleet address ...`` and ``skyfleet routing-domain ...``: the address view from the command
line (an HTTP client of /v1/addresses and /v1/routing-domains, their VPN meshes included)."""

from __future__ import annotations

import ipaddress
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from skyfleet.cli.client import ApiClient, ApiFailure, seg
from skyfleet.cli.context import Ctx, client_of, fail
from skyfleet.cli.output import emit

app = typer.Typer(help="Every IP and MAC of every site, utilisation and conflicts.", no_args_is_help=True)
domain_app = typer.Typer(help="Networks across sites that route to one another.", no_args_is_help=True)
COLUMNS = [("site", "SITE"), ("kind", "KIND"), ("ip", "IP"), ("mac", "MAC"), ("subnet_cidr", "SUBNET"),
           ("device_name", "DEVICE"), ("project_id", "PROJECT"), ("age_seconds", "AGE s"), ("stale", "STALE")]
CSV_PAGE = 100_000
DOMAIN_COLUMNS = [("name", "NAME"), ("id", "ID"), ("project_id", "PROJECT"), ("networks", "NETWORKS"),
                  ("conflicts", "CONFLICTS"), ("members", "MEMBERS")]


@app.command("list")
def list_(
    ctx: typer.Context,
    ip: Annotated[str | None, typer.Option(help="Exact address, v4 or v6")] = None,
    cidr: Annotated[str | None, typer.Option(help="Addresses inside this CIDR, e.g. 10.0.0.0/8")] = None,
    mac: Annotated[str | None, typer.Option(help="MAC address (any case)")] = None,
    device: Annotated[str | None, typer.Option(help="Server id or name")] = None,
    site: Annotated[str | None, typer.Option(help="Site id or name")] = None,
    kind: Annotated[str | None, typer.Option(help="fixed, floating, gateway (comma-separated)")] = None,
    version: Annotated[int | None, typer.Option(help="4 or 6")] = None,
    project: Annotated[str | None, typer.Option(help="Project id (admins)")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="At most this many rows (default: all)")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV (an export) instead of a table")] = False,
) -> None:
    """List addresses (all pages unless --limit)."""
    c: Ctx = ctx.obj
    params: dict[str, Any] = {"ip": ip, "cidr": cidr, "mac": mac, "device": device, "site": site, "kind": kind,
                              "version": version, "project": project}
    rows: list[dict[str, Any]] = []
    offset: int | None = 0
    try:
        client = client_of(c)
        if csv:
            _csv(client, params, limit)
            return
        while offset is not None and (limit is None or len(rows) < limit):
            page_size = min(1000, limit - len(rows)) if limit else 1000
            body = client.get("/v1/addresses", limit=page_size, offset=offset, **params)
            rows.extend(body["items"])
            offset = body.get("next_offset")
    except ApiFailure as exc:
        fail(str(exc))
    emit(rows, fmt=c.fmt, columns=COLUMNS)


def _csv(client: ApiClient, params: dict[str, Any], limit: int | None) -> None:
    """Every page of the CSV export (or the first ``limit`` rows), one header line."""
    offset: int | None = 0
    first = True
    while offset is not None:
        query = {**{k: v for k, v in params.items() if v is not None}, "format": "csv", "offset": offset,
                 "limit": limit or CSV_PAGE}
        response = client.response("GET", "/v1/addresses", params=query)
        lines = response.text.splitlines(keepends=True)
        sys.stdout.write("".join(lines if first else lines[1:]))
        first = False
        following = response.headers.get("x-next-offset")
        offset = int(following) if following and limit is None else None


@app.command("summary")
def summary(ctx: typer.Context, site: Annotated[str | None, typer.Option(help="Site id or name")] = None) -> None:
    """Used and free addresses per site and per subnet."""
    c: Ctx = ctx.obj
    try:
        body = client_of(c).get("/v1/addresses/summary", site=site)
    except ApiFailure as exc:
        fail(str(exc))
    if c.fmt == "json":
        emit(body, fmt="json")
        return
    emit([{"site": s["site"], "v4": _count(s.get("v4")), "v6": _count(s.get("v6")), "observed_at": s["observed_at"]}
          for s in body["sites"]], fmt="table",
         columns=[("site", "SITE"), ("v4", "IPv4 used/free"), ("v6", "IPv6 used/free"), ("observed_at", "OBSERVED")])
    emit(body["subnets"], fmt="table", columns=[("site", "SITE"), ("cidr", "CIDR"), ("name", "NAME"),
                                                ("used", "USED"), ("free", "FREE"), ("project_id", "PROJECT")])


def _all(client: ApiClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every page of a list that answers ``items`` and ``next_offset``."""
    items: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        body = client.get(path, limit=1000, offset=offset, **params)
        items.extend(body["items"])
        offset = body.get("next_offset")
    return items


SHOW_COLUMNS = [("site", "SITE"), ("kind", "KIND"), ("network_id", "NETWORK"), ("subnet_cidr", "SUBNET"),
                ("port_id", "PORT"), ("device_name", "DEVICE"), ("mac", "MAC"), ("age_seconds", "AGE s"),
                ("stale", "STALE"), ("conflict_kinds", "CONFLICTS")]


def _key_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def concerns(conflict: dict[str, Any], ip: ipaddress.IPv4Address | ipaddress.IPv6Address,
             rows: list[dict[str, Any]]) -> bool:
    """Whether a conflict is about this address: a duplicate of it (fixed or public), a duplicate of
    the MAC of one of its rows, or an overlap of subnets whose range holds it and one of whose listed
    members is the subnet of one of its rows. Read from the conflict's stable key (``ip:DOMAIN:IP``,
    ``public:IP``, ``mac:DOMAIN:MAC``, ``overlap:DOMAIN:FIRST-LAST``), so a row beyond the 50 listed
    members still finds its conflict."""
    kind, key = conflict.get("kind"), str(conflict.get("key", ""))
    if kind == "duplicate_ip":
        return _key_address(key.split(":", 2)[-1]) == ip
    if kind == "duplicate_public_ip":
        return _key_address(key.split(":", 1)[-1]) == ip
    if kind == "duplicate_mac":
        return key.split(":", 2)[-1] in {r.get("mac") for r in rows if r.get("mac")}
    if kind == "overlapping_subnets":
        first, _, last = key.split(":", 2)[-1].partition("-")
        low, high = _key_address(first), _key_address(last)
        if low is None or high is None or low.version != ip.version or not low <= ip <= high:  # type: ignore[operator]
            return False
        subnets = {(r.get("site_id"), r.get("subnet_id")) for r in rows}
        return any((m.get("site_id"), m.get("subnet_id")) in subnets for m in conflict.get("members", []))
    return False


def _is_member(row: dict[str, Any], conflict: dict[str, Any], ip: ipaddress.IPv4Address | ipaddress.IPv6Address
               ) -> bool:
    """Whether this row is one of the conflict's listed members (same site, and same address or subnet)."""
    for member in conflict.get("members", []):
        if member.get("site_id") != row.get("site_id"):
            continue
        if conflict.get("kind") == "overlapping_subnets":
            if member.get("subnet_id") == row.get("subnet_id"):
                return True
        elif _key_address(str(member.get("ip"))) == ip and member.get("kind") == row.get("kind") and \
                member.get("port_id") == row.get("port_id"):
            return True
    return False


@app.command("show")
def show(ctx: typer.Context, ip: Annotated[str, typer.Argument(help="The address, v4 or v6 (any spelling)")]) -> None:
    """Every row of one IP across sites (site, network, subnet, port, device, MAC, freshness) and the
    conflicts it is part of."""
    c: Ctx = ctx.obj
    try:
        client = client_of(c)
        rows = _all(client, "/v1/addresses", ip=ip)
        found = _all(client, "/v1/addresses/conflicts")
    except ApiFailure as exc:
        fail(str(exc))
    address = ipaddress.ip_address(rows[0]["ip"]) if rows else _key_address(ip)
    related = [conflict for conflict in found if address is not None and concerns(conflict, address, rows)]
    for row in rows:
        mine = [conflict for conflict in related if address is not None and _is_member(row, conflict, address)]
        row["conflicts"] = [conflict["key"] for conflict in mine]
        row["conflict_kinds"] = ", ".join(sorted({conflict["kind"] for conflict in mine}))
    if c.fmt == "json":
        emit({"ip": str(address) if address is not None else ip, "addresses": rows, "conflicts": related},
             fmt="json")
        return
    if not rows:
        fail(f"no address {ip} in the sites you can see (as of their last inventory refresh)")
    emit(rows, fmt="table", columns=SHOW_COLUMNS)
    if related:
        emit(related, fmt="table", columns=[("kind", "KIND"), ("summary", "SUMMARY"), ("count", "MEMBERS"),
                                            ("first_seen_at", "SINCE")])


def _count(entry: dict[str, Any] | None) -> str:
    return f"{entry['used']}/{entry['free']}" if entry else "-"


@app.command("conflicts")
def conflicts(ctx: typer.Context,
              kind: Annotated[str | None, typer.Option(help="overlapping_subnets, duplicate_ip, duplicate_mac, "
                                                            "duplicate_public_ip")] = None) -> None:
    """Overlapping subnets and duplicate IPs/MACs in routing domains, duplicate public IPs anywhere."""
    c: Ctx = ctx.obj
    try:
        items = _all(client_of(c), "/v1/addresses/conflicts", kind=kind)
    except ApiFailure as exc:
        fail(str(exc))
    rows = [{**item, "where": ", ".join(sorted({f"{m.get('site')}:{m.get('cidr') or m.get('ip')}"
                                                for m in item["members"]}))} for item in items]
    emit(rows, fmt=c.fmt, columns=[("kind", "KIND"), ("summary", "SUMMARY"), ("count", "MEMBERS"),
                                   ("where", "WHERE"), ("first_seen_at", "SINCE")])


def _members(values: list[str]) -> list[dict[str, str]]:
    members = []
    for value in values:
        if value.startswith("project="):
            members.append({"project": value.split("=", 1)[1]})
        elif "/" in value:
            site, network = value.split("/", 1)
            members.append({"site": site, "network": network})
        else:
            raise typer.BadParameter(f"{value!r}: write SITE/NETWORK_ID or project=PROJECT_ID")
    return members


@domain_app.command("create")
def create_domain(
    ctx: typer.Context, name: str,
    member: Annotated[list[str] | None, typer.Option("--member", "-m", help="SITE/NETWORK_ID or project=ID")] = None,
    description: Annotated[str, typer.Option(help="Free text")] = "",
    project: Annotated[str | None, typer.Option(help="Owner project (admins)")] = None,
) -> None:
    """Declare networks that route to one another; conflicts in it are listed at once."""
    c: Ctx = ctx.obj
    body = {"name": name, "description": description, "members": _members(member or [])}
    if project:
        body["project"] = project
    try:
        emit(client_of(c).request("POST", "/v1/routing-domains", json=body), fmt=c.fmt)
    except ApiFailure as exc:
        fail(str(exc))


@domain_app.command("list")
def list_domains(ctx: typer.Context) -> None:
    """Routing domains of your project (admins: all)."""
    c: Ctx = ctx.obj
    try:
        items = _all(client_of(c), "/v1/routing-domains")
    except ApiFailure as exc:
        fail(str(exc))
    rows = [{**d, "members": ", ".join(f"project={m['project']}" if m.get("project") else f"{m['site']}/{m['network']}"
                                       for m in d["members"])} for d in items]
    emit(rows if c.fmt != "json" else items, fmt=c.fmt, columns=DOMAIN_COLUMNS)


@domain_app.command("set")
def set_domain(
    ctx: typer.Context, ref: str,
    member: Annotated[list[str] | None, typer.Option("--member", "-m", help="Replaces every member")] = None,
    name: Annotated[str | None, typer.Option(help="New name")] = None,
    description: Annotated[str | None, typer.Option(help="New description")] = None,
) -> None:
    """Rename, describe, or replace the members of a routing domain."""
    c: Ctx = ctx.obj
    body: dict[str, Any] = {k: v for k, v in (("name", name), ("description", description)) if v is not None}
    if member is not None:
        body["members"] = _members(member)
    try:
        emit(client_of(c).request("PATCH", f"/v1/routing-domains/{seg(ref)}", json=body), fmt=c.fmt)
    except ApiFailure as exc:
        fail(str(exc))


@domain_app.command("delete")
def delete_domain(ctx: typer.Context, ref: str) -> None:
    """Forget a routing domain (its conflicts are cleared)."""
    c: Ctx = ctx.obj
    try:
        client_of(c).request("DELETE", f"/v1/routing-domains/{seg(ref)}")
    except ApiFailure as exc:
        fail(str(exc))
    emit({"deleted": ref}, fmt=c.fmt)


MESH_COLUMNS = [("site_name", "SITE"), ("status", "STATUS"), ("address", "ADDRESS"), ("connections", "CONNECTIONS"),
                ("key", "KEY"), ("error", "ERROR")]


@domain_app.command("mesh")
def mesh(ctx: typer.Context, ref: str,
         network: Annotated[str, typer.Option(help="The declared network whose sites are meshed (id or name)")],
         psk_file: Annotated[Path | None, typer.Option(help="File holding the pre-shared key (16-128 printable "
                                                            "characters); generated when absent")] = None) -> None:
    """Mesh a routing domain with site-to-site IPsec (Neutron VPNaaS) over a declared network's sites.
    The key is read from a file (never from the command line, where other users could see it)."""
    c: Ctx = ctx.obj
    body: dict[str, Any] = {"network": network}
    if psk_file is not None:
        body["psk"] = psk_file.read_text().strip()
    try:
        emit(_mesh_rows(client_of(c).request("POST", f"/v1/routing-domains/{seg(ref)}/vpn", json=body), c.fmt),
             fmt=c.fmt, columns=MESH_COLUMNS)
    except ApiFailure as exc:
        fail(str(exc))


@domain_app.command("mesh-show")
def mesh_show(ctx: typer.Context, ref: str) -> None:
    """Each site of the mesh: status, VPN address, each connection's status, the reason of a failure."""
    c: Ctx = ctx.obj
    try:
        emit(_mesh_rows(client_of(c).request("GET", f"/v1/routing-domains/{seg(ref)}/vpn"), c.fmt), fmt=c.fmt,
             columns=MESH_COLUMNS)
    except ApiFailure as exc:
        fail(str(exc))


@domain_app.command("rotate-key")
def rotate_key(ctx: typer.Context, ref: str,
               psk_file: Annotated[Path | None, typer.Option(help="File holding the new pre-shared key (16-128 "
                                                                  "printable characters); generated when absent")]
               = None) -> None:
    """Give a mesh a new pre-shared key on every connection of every site; mesh-show's KEY column says
    which sites hold it (``old`` until their part has been converged)."""
    c: Ctx = ctx.obj
    body: dict[str, Any] = {}
    if psk_file is not None:
        body["psk"] = psk_file.read_text().strip()
    try:
        answer = client_of(c).request("POST", f"/v1/routing-domains/{seg(ref)}/vpn/rotate-key", json=body)
        emit(_mesh_rows(answer, c.fmt),
             fmt=c.fmt, columns=MESH_COLUMNS)
    except ApiFailure as exc:
        fail(str(exc))


@domain_app.command("unmesh")
def unmesh(ctx: typer.Context, ref: str) -> None:
    """Remove the domain's mesh: connections, VPN services, endpoint groups and policies Skyfleet made."""
    c: Ctx = ctx.obj
    try:
        body = client_of(c).request("DELETE", f"/v1/routing-domains/{seg(ref)}/vpn")
    except ApiFailure as exc:
        fail(str(exc))
    emit(body if body is not None else {"deleted": ref}, fmt=c.fmt)


def _mesh_rows(body: Any, fmt: str) -> Any:
    if fmt == "json":
        return body
    return [{**s, "connections": ", ".join(f"{peer}={state}" for peer, state in sorted(s["connections"].items())),
             "key": _key_state(s)} for s in body["sites"]]


def _key_state(site: dict[str, Any]) -> str:
    """current, old (an earlier generation), or none (the site never held a key: a first run pending or failed)."""
    if site.get("key_current"):
        return "current"
    return "none" if site.get("key_version") is None else "old"
