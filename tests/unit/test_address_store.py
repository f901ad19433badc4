"""The address view's store on SQLite and PostgreSQL: addresses derived from inventory rows (fixed,
floating, gateway; v4 and v6), every filter, tenant scoping, utilisation, and conflicts raised and
cleared exactly once."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from skyfleet.db import migrate
from skyfleet.db.base import utcnow
from skyfleet.db.engine import make_engine, make_session_factory, transaction
from skyfleet.domains.addresses import build, conflicts, queries
from skyfleet.domains.addresses.models import RoutingDomain, RoutingDomainMember
from skyfleet.domains.events.models import Event
from skyfleet.domains.inventory import service as inventory
from skyfleet.domains.sites.models import Site
from skyfleet.drivers.base import Record

NOW = utcnow()


def subnet(rid: str, net: str, cidr: str, project: str = "p1", gateway: str | None = None) -> Record:
    network = ipaddress.ip_network(cidr)
    return Record(kind="subnets", remote_id=rid, project_id=project, name=rid, status=None,
                  data={"cidr": cidr, "ip_version": network.version, "network_id": net,
                        "gateway_ip": gateway or str(network.network_address + 1)})


def port(rid: str, net: str, ips: list[tuple[str, str]], *, mac: str, project: str = "p1", device: str = "",
         owner: str = "compute:nova") -> Record:
    fixed = [{"ip_address": ip, "subnet_id": sid} for sid, ip in ips]
    return Record(kind="ports", remote_id=rid, project_id=project, name="", status="ACTIVE",
                  ips=tuple(ip for _, ip in ips),
                  data={"mac_address": mac, "fixed_ips": fixed, "device_id": device, "device_owner": owner,
                        "network_id": net})


def server(rid: str, name: str, project: str = "p1") -> Record:
    return Record(kind="servers", remote_id=rid, project_id=project, name=name, status="ACTIVE", data={})


def router(rid: str, name: str, project: str = "p1") -> Record:
    return Record(kind="routers", remote_id=rid, project_id=project, name=name, status="ACTIVE",
                  data={"external_network_id": "ext"})


def fip(rid: str, address: str, port_id: str | None, project: str = "p1") -> Record:
    return Record(kind="floating_ips", remote_id=rid, project_id=project, name=address, status="ACTIVE",
                  ips=(address,), data={"floating_ip_address": address, "port_id": port_id, "network_id": "ext"})


def site_records(n: int, *, project: str = "p1") -> dict[str, list[Record]]:
    """Site ``n``: a dual-stack tenant network with a server, a router with a gateway, a floating IP."""
    return {
        "subnets": [subnet(f"sn4-{n}", f"net-{n}", f"10.{n}.0.0/24", project),
                    subnet(f"sn6-{n}", f"net-{n}", f"fd00:{n}::/64", project),
                    subnet(f"ext-{n}", "ext", "203.0.113.0/24", "admin")],
        "ports": [port(f"vm-port-{n}", f"net-{n}", [(f"sn4-{n}", f"10.{n}.0.5"), (f"sn6-{n}", f"fd00:{n}::5")],
                       mac=f"FA:16:3E:00:00:0{n}", project=project, device=f"vm-{n}"),
                  port(f"rif-{n}", f"net-{n}", [(f"sn4-{n}", f"10.{n}.0.1")], mac=f"fa:16:3e:00:01:0{n}",
                       project=project, device=f"r-{n}", owner="network:router_interface"),
                  port(f"gw-{n}", "ext", [(f"ext-{n}", f"203.0.113.{10 + n}")], mac=f"fa:16:3e:00:02:0{n}",
                       project="", device=f"r-{n}", owner="network:router_gateway"),
                  port(f"fipport-{n}", "ext", [(f"ext-{n}", f"203.0.113.{100 + n}")], mac=f"fa:16:3e:00:03:0{n}",
                       project="", device=f"fip-{n}", owner="network:floatingip")],
        "servers": [server(f"vm-{n}", f"web-{n}", project)],
        "routers": [router(f"r-{n}", f"edge-{n}", project)],
        "floating_ips": [fip(f"fip-{n}", f"203.0.113.{100 + n}", f"vm-port-{n}", project)],
    }


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    migrate.upgrade(db_url)
    engine = make_engine(db_url)
    made = make_session_factory(engine)
    with transaction(made) as session:
        for n in (1, 2, 3):
            session.add(Site(id=f"s{n}", name=f"site-{n}", auth_public={}, auth_encrypted="x",
                             availability="online"))
    yield made
    engine.dispose()


def store(factory: sessionmaker[Session], n: int, records: dict[str, list[Record]]) -> int:
    with transaction(factory) as session:
        for kind in build.SOURCES:
            inventory.apply_records(session, site=inventory.SiteRef(f"s{n}", f"site-{n}"), kind=kind,
                                    records=records.get(kind, []), now=NOW, complete=True, emit=False)
        return build.refresh_site(session, site_id=f"s{n}", now=NOW).written


def addresses(factory: sessionmaker[Session], **filters: Any) -> list[tuple[str, str, str]]:
    with transaction(factory) as session:
        rows, _ = queries.list_addresses(session, filters=queries.AddressFilter(**filters), limit=1000, offset=0)
        return [(r.site_name, r.item.kind, r.item.ip) for r in rows]


def test_a_sites_addresses_are_derived_with_their_kinds_devices_and_projects(
        factory: sessionmaker[Session]) -> None:
    assert store(factory, 1, site_records(1)) > 0
    with transaction(factory) as session:
        rows, _ = queries.list_addresses(session, filters=queries.AddressFilter(), limit=100, offset=0)
        by_ip = {r.item.ip: r.item for r in rows}
    assert set(by_ip) == {"10.1.0.1", "10.1.0.5", "fd00:1::5", "203.0.113.11", "203.0.113.101"}
    vm = by_ip["10.1.0.5"]
    assert (vm.kind, vm.mac, vm.device_id, vm.device_name, vm.subnet_cidr) == (
        "fixed", "fa:16:3e:00:00:01", "vm-1", "web-1", "10.1.0.0/24")
    assert by_ip["fd00:1::5"].ip_version == 6 and by_ip["fd00:1::5"].port_id == "vm-port-1"
    gateway = by_ip["203.0.113.11"]
    assert (gateway.kind, gateway.project_id, gateway.device_name) == ("gateway", "p1", "edge-1")
    floating = by_ip["203.0.113.101"]  # Neutron's own floating IP port is not a second row
    assert (floating.kind, floating.device_id, floating.device_name, floating.subnet_cidr) == (
        "floating", "vm-1", "web-1", "203.0.113.0/24")
    assert store(factory, 1, site_records(1)) == 0  # nothing changed: nothing written


def test_filters_ip_cidr_mac_device_kind_version_site_and_project(factory: sessionmaker[Session]) -> None:
    store(factory, 1, site_records(1))
    store(factory, 2, site_records(2, project="p2"))
    ip = ipaddress.ip_address
    assert addresses(factory, ip=ip("10.2.0.5")) == [("site-2", "fixed", "10.2.0.5")]
    assert addresses(factory, ip=ip("FD00:2::5")) == [("site-2", "fixed", "fd00:2::5")]
    assert [a[2] for a in addresses(factory, cidr=ipaddress.ip_network("10.0.0.0/8"))] == [
        "10.1.0.1", "10.1.0.5", "10.2.0.1", "10.2.0.5"]
    assert [a[2] for a in addresses(factory, cidr=ipaddress.ip_network("fd00::/16"))] == ["fd00:1::5", "fd00:2::5"]
    assert addresses(factory, cidr=ipaddress.ip_network("10.1.0.4/31")) == [("site-1", "fixed", "10.1.0.5")]
    assert [a[2] for a in addresses(factory, mac="fa:16:3e:00:00:02")] == ["10.2.0.5", "fd00:2::5"]
    assert {a[2] for a in addresses(factory, device="web-1")} == {"10.1.0.5", "fd00:1::5", "203.0.113.101"}
    assert {a[2] for a in addresses(factory, device="vm-2")} == {"10.2.0.5", "fd00:2::5", "203.0.113.102"}
    assert addresses(factory, kinds=("gateway",), site_id="s2") == [("site-2", "gateway", "203.0.113.12")]
    assert [a[2] for a in addresses(factory, version=6)] == ["fd00:1::5", "fd00:2::5"]
    assert {a[0] for a in addresses(factory, project_id="p2")} == {"site-2"}
    assert addresses(factory, project_id="p3") == []


def test_utilisation_counts_used_and_free_per_neutron(factory: sessionmaker[Session]) -> None:
    store(factory, 1, site_records(1))
    with transaction(factory) as session:
        uses = {u.subnet.cidr: (u.used, u.free) for u in queries.utilisation(session, project_id=None,
                                                                           site_id=None)}
        mine = queries.utilisation(session, project_id="p1", site_id=None)
    assert uses["10.1.0.0/24"] == (2, 253 - 1)  # the router holds the gateway (outside the pool); the VM one
    assert uses["fd00:1::/64"] == (1, 2**64 - 2 - 1)
    assert uses["203.0.113.0/24"] == (2, 253 - 2)  # the gateway port and the floating IP
    assert {u.subnet.cidr for u in mine} == {"10.1.0.0/24", "fd00:1::/64"}  # not the admin's external subnet


def _domain(factory: sessionmaker[Session], name: str, owner: str | None,
            members: list[tuple[str | None, str | None, str | None]]) -> str:
    with transaction(factory) as session:
        domain = RoutingDomain(name=name, description="", project_id=owner, created_at=NOW, updated_at=NOW)
        session.add(domain)
        session.flush()
        for site_id, network_id, project in members:
            session.add(RoutingDomainMember(domain_id=domain.id, site_id=site_id, network_id=network_id,
                                            project_id=project))
        return domain.id


def _detect(factory: sessionmaker[Session], at: int = 0) -> conflicts.DetectReport:
    with transaction(factory) as session:
        return conflicts.detect(session, now=NOW + timedelta(seconds=at))


def _events(factory: sessionmaker[Session]) -> list[tuple[str, str | None, str]]:
    with transaction(factory) as session:
        return [(e.kind, e.project_id, e.details["key"]) for e in session.scalars(
            select(Event).where(Event.kind.like("address.%")).order_by(Event.id))]


def test_conflicts_in_a_routing_domain_appear_once_and_clear_once(factory: sessionmaker[Session]) -> None:
    one, two = site_records(1), site_records(2)
    two["subnets"][0] = subnet("sn4-2", "net-2", "10.1.0.0/23")  # overlaps site 1's 10.1.0.0/24
    two["subnets"][1] = subnet("sn6-2", "net-2", "fd00:1::/64")  # so does the v6 one
    two["ports"][0] = port("vm-port-2", "net-2", [("sn4-2", "10.1.0.5"), ("sn6-2", "fd00:1::5")],
                           mac="fa:16:3e:00:00:01", device="vm-2")  # same IPs and MAC as site 1's VM
    store(factory, 1, one)
    store(factory, 2, two)
    assert _detect(factory).conflicts == 0  # no routing domain: tenant networks are isolated
    domain = _domain(factory, "vpn", "p1", [("s1", "net-1", None), ("s2", "net-2", None)])
    report = _detect(factory)
    assert (report.raised, report.cleared, report.domain_networks) == (5, 0, 2)
    with transaction(factory) as session:
        found = {(c.kind, c.key) for c in queries.list_conflicts(session, project_id="p1")[0]}
        assert queries.list_conflicts(session, project_id="p2")[0] == []
    assert found == {
        ("duplicate_ip", f"ip:{domain}:10.1.0.5"), ("duplicate_ip", f"ip:{domain}:fd00:1::5"),
        ("duplicate_mac", f"mac:{domain}:fa:16:3e:00:00:01"),
        ("overlapping_subnets", f"overlap:{domain}:10.1.0.0-10.1.1.255"),
        ("overlapping_subnets", f"overlap:{domain}:fd00:1::-fd00:1::ffff:ffff:ffff:ffff"),
    }  # the public addresses differ (203.0.113.1x, .10x) and the external network is in no domain
    assert _detect(factory, 1).raised == 0  # known: no second event
    with transaction(factory) as session:  # pages, for a tenant and for fleet admins
        first, following = queries.list_conflicts(session, project_id="p1", limit=3)
        rest, last = queries.list_conflicts(session, project_id="p1", limit=3, offset=following or 0)
        everything, none = queries.list_conflicts(session, project_id=None, limit=5)
    assert (following, last, none) == (3, None, None) and len(rest) == 2
    assert {c.key for c in first + rest} == {key for _, key in found} == {c.key for c in everything}
    assert len([e for e in _events(factory) if e[0] == "address.conflict"]) == 5
    two["subnets"][0] = subnet("sn4-2", "net-2", "10.2.0.0/24")  # the v4 side is renumbered
    two["ports"][0] = port("vm-port-2", "net-2", [("sn4-2", "10.2.0.5"), ("sn6-2", "fd00:1::5")],
                           mac="fa:16:3e:00:00:01", device="vm-2")
    two["ports"][1] = port("rif-2", "net-2", [("sn4-2", "10.2.0.1")], mac="fa:16:3e:00:01:02", device="r-2",
                           owner="network:router_interface")
    store(factory, 2, two)
    report = _detect(factory, 2)
    assert (report.raised, report.cleared, report.conflicts) == (0, 2, 3)
    cleared = {e[2] for e in _events(factory) if e[0] == "address.conflict_cleared"}
    assert cleared == {f"ip:{domain}:10.1.0.5", f"overlap:{domain}:10.1.0.0-10.1.1.255"}
    assert all(e[1] == "p1" for e in _events(factory))


def test_a_project_member_covers_every_network_of_the_project(factory: sessionmaker[Session]) -> None:
    store(factory, 1, site_records(1))
    two = site_records(2)
    two["subnets"][0] = subnet("sn4-2", "net-2", "10.1.0.128/25")
    store(factory, 2, two)
    with transaction(factory) as session:
        for n in (1, 2):
            inventory.apply_records(session, site=inventory.SiteRef(f"s{n}", f"site-{n}"), kind="networks",
                                    records=[Record(kind="networks", remote_id=f"net-{n}", project_id="p1",
                                                    name="n", status="ACTIVE", data={})],
                                    now=NOW, complete=True, emit=False)
    _domain(factory, "all of p1", "p1", [(None, None, "p1")])
    report = _detect(factory)
    assert report.domain_networks == 2
    with transaction(factory) as session:
        kinds = sorted(c.kind for c in queries.list_conflicts(session, project_id="p1")[0])
    assert kinds == ["overlapping_subnets"]  # 10.1.0.128/25 inside 10.1.0.0/24; IPs and MACs differ


def test_a_public_ip_on_two_sites_is_a_conflict_anywhere(factory: sessionmaker[Session]) -> None:
    store(factory, 1, site_records(1))
    other = site_records(2, project="p2")
    other["floating_ips"] = [fip("fip-2", "203.0.113.101", None, project="p2")]  # site 1's floating IP
    store(factory, 2, other)
    report = _detect(factory)
    assert report.raised == 1
    with transaction(factory) as session:
        (mine,) = queries.list_conflicts(session, project_id="p1")[0]
        assert [c.key for c in queries.list_conflicts(session, project_id="p2")[0]] == [mine.key]
        assert queries.list_conflicts(session, project_id="p3")[0] == []
    assert mine.kind == "duplicate_public_ip" and {m["site"] for m in mine.details["members"]} == {"site-1", "site-2"}
    assert sorted((e[0], e[1] or "") for e in _events(factory)) == [
        ("address.conflict", ""), ("address.conflict", "p1"), ("address.conflict", "p2")]
    other["floating_ips"] = []
    store(factory, 2, other)
    assert _detect(factory, 1).cleared == 1
    assert len([e for e in _events(factory) if e[0] == "address.conflict_cleared"]) == 3


def test_a_refresh_rederives_only_what_changed_or_was_never_derived(
        factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> None:
    from skyfleet.reconcile.inventory import Observed, Target, store_site

    target = Target(inventory.SiteRef("s1", "site-1"), {}, True, {})
    calls: list[str] = []
    real = build.refresh_site

    def counted(session: Session, *, site_id: str, now: Any) -> build.BuildCounts:
        calls.append(site_id)
        return real(session, site_id=site_id, now=now)

    monkeypatch.setattr(build, "refresh_site", counted)
    for n in (1, 2):  # site 2's inventory was stored before the address view existed
        with transaction(factory) as session:
            for kind, rows in site_records(n).items():
                inventory.apply_records(session, site=inventory.SiteRef(f"s{n}", f"site-{n}"), kind=kind,
                                        records=rows, now=NOW, complete=True, emit=False)
    with transaction(factory) as session:
        assert store_site(session, target, Observed(full=True, complete=site_records(1)), NOW).addresses > 0
    with transaction(factory) as session:  # nothing changed: not derived again
        assert store_site(session, target, Observed(full=True, complete=site_records(1)), NOW).addresses == 0
    assert calls == ["s1"]
    with transaction(factory) as session:  # unchanged, but never derived
        two = Target(inventory.SiteRef("s2", "site-2"), {}, True, {})
        assert store_site(session, two, Observed(full=True, complete=site_records(2)), NOW).addresses > 0
    assert calls == ["s1", "s2"]
    changed = site_records(1)
    changed["servers"] = [server("vm-1", "renamed")]
    with transaction(factory) as session:  # an incremental refresh that renamed the server
        assert store_site(session, Target(target.site, {}, False, {}),
                          Observed(full=False, changed={"servers": changed["servers"]}), NOW).addresses > 0
    assert {a[2] for a in addresses(factory, device="renamed")} == {"10.1.0.5", "fd00:1::5", "203.0.113.101"}


def test_concurrent_detections_raise_each_conflict_once(factory: sessionmaker[Session]) -> None:
    import threading

    store(factory, 1, site_records(1))
    other = site_records(2, project="p2")
    other["floating_ips"] = [fip("fip-2", "203.0.113.101", None, project="p2")]
    store(factory, 2, other)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            _detect(factory)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len([e for e in _events(factory) if e[0] == "address.conflict"]) == 3  # admins, p1, p2: once each
