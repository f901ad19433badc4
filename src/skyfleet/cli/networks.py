"""``skyfleet network ...``: tenant networks declared once (an HTTP client of /v1/networks).

Why it exists: a tenant declares a network once, from its pool, and reads where it stands on every site
(each site's prefix and binding) without writing JSON by hand.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from skyfleet.cli.client import seg
from skyfleet.cli.context import Ctx
from skyfleet.cli.output import emit
from skyfleet.cli.sync import COLUMNS, Group, Selector, Sites, _call, _show, placement

app = typer.Typer(help="Tenant networks declared once, numbered from an address pool on every placed site.",
                  no_args_is_help=True)
PREFIX_COLUMNS = [("site_name", "SITE"), ("cidr", "CIDR"), ("allocation_id", "ALLOCATION")]


@app.command("create")
def create(ctx: typer.Context, name: str,
           pool: Annotated[str | None, typer.Option(help="Address pool (id or name) the prefixes come from")] = None,
           prefix_length: Annotated[int | None, typer.Option("--prefix-length", "-l",
                                                             help="Each site's prefix (default 24)")] = None,
           cidr: Annotated[list[str] | None, typer.Option("--cidr", help="Instead of --pool: SITE=CIDR, each site's "
                                                                        "CIDR given outright (repeatable)")] = None,
           site: Sites = None, selector: Selector = None, group: Group = None,
           dns: Annotated[list[str] | None, typer.Option("--dns", help="DNS nameserver (repeatable)")] = None,
           dhcp: Annotated[bool, typer.Option("--dhcp/--no-dhcp", help="DHCP on the subnet")] = True,
           router: Annotated[bool, typer.Option("--router/--no-router", help="A router on the subnet")] = True,
           external_network: Annotated[str | None, typer.Option(help="External network of the router's gateway "
                                                                     "(id or name in each site)")] = None,
           second_pool: Annotated[str | None, typer.Option(help="Dual stack: a pool of the other IP version for a "
                                                                "second subnet")] = None,
           second_prefix_length: Annotated[int, typer.Option(help="Each site's prefix of the second pool")] = 64,
           allow_internal: Annotated[bool, typer.Option(help="A security group <name>-internal letting in the "
                                                             "network's prefixes of every site")] = False,
           allow_overlap: Annotated[bool, typer.Option(help="With --cidr: a deliberate reuse of a range the "
                                                            "project's networks already use")] = False,
           project: Annotated[str | None, typer.Option(help="Owner project id (fleet admins)")] = None) -> None:
    """Declare a network: every placed site gets a prefix of the pool (or its --cidr), a network, a subnet and
    a router."""
    body: dict[str, Any] = {"name": name, "enable_dhcp": dhcp, "dns_nameservers": dns or [],
                            "router": {"enabled": router, "external_network": external_network}}
    if pool is not None:
        body["pool"] = pool
    if prefix_length is not None:
        body["prefix_length"] = prefix_length
    if cidr:
        pairs = [item.partition("=") for item in cidr]
        if any(not where or not sep or not value for where, sep, value in pairs):
            raise typer.BadParameter("--cidr takes SITE=CIDR, e.g. --cidr edge-1=10.20.1.0/24")
        body["cidrs"] = {where: value for where, _sep, value in pairs}
    if allow_overlap:
        body["allow_overlap"] = True
    if second_pool:
        body["second_subnet"] = {"pool": second_pool, "prefix_length": second_prefix_length}
    if allow_internal:
        body["security_group"] = {"allow_internal": True}
    where = placement(site, selector, group)
    if where:
        body["placement"] = where
    if project:
        body["project"] = {"id": project}
    _show(ctx, _call(ctx, "POST", "/v1/networks", json=body))


@app.command("list")
def list_(ctx: typer.Context) -> None:
    """Declared networks with a count of sites per status."""
    c: Ctx = ctx.obj
    emit(_call(ctx, "GET", "/v1/networks", params={"limit": 1000})["resources"], fmt=c.fmt, columns=COLUMNS)


@app.command("show")
def show(ctx: typer.Context, ref: str) -> None:
    """One network: each site's binding, then each site's prefix."""
    c: Ctx = ctx.obj
    body = _call(ctx, "GET", f"/v1/networks/{seg(ref)}")
    _show(ctx, body)
    if c.fmt != "json":
        emit(list((body.get("options") or {}).get("prefixes", {}).values()), fmt=c.fmt, columns=PREFIX_COLUMNS)


@app.command("delete")
def delete(ctx: typer.Context, ref: str,
           purge: Annotated[bool, typer.Option(help="Delete the ports (servers' too) that still use it first")]
           = False) -> None:
    """Delete what Skyfleet made on every site; the prefixes go back to the pool. Refused while servers'
    ports use the network, unless --purge."""
    _show(ctx, _call(ctx, "DELETE", f"/v1/networks/{seg(ref)}", params={"purge": "true"} if purge else None))
