"""/v1/addresses and /v1/routing-domains through the API (SQLite and PostgreSQL): two tenants each
see only their own project's addresses, utilisation and conflicts; filters, CSV export and bad input
(4xx with the reason, never 500); routing domains declared, changed and removed with their conflicts
raised and cleared at once."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.addresses import build, conflicts
from skyfleet.domains.inventory import service as inventory
from skyfleet.drivers.base import Record
from tests.support import TENANT, site_body
from tests.unit.test_address_store import NOW, fip, port, site_records, subnet

OTHER = Principal(user_id="o", user_name="olga", project_id="p2", project_name="p2", roles=("member",))
READER = Principal(user_id="r", user_name="rita", project_id="p1", project_name="p1", roles=("reader",),
                   read_only=True)
Switch = Callable[[Principal], None]


def _store(runtime: Runtime, site_id: str, site_name: str, records: dict[str, list[Record]]) -> None:
    with transaction(runtime.factory) as session:
        networks = {(r.data["network_id"], r.project_id) for r in records["subnets"]}
        records = {**records, "networks": [Record(kind="networks", remote_id=n, project_id=p, name=n,
                                                  status="ACTIVE", data={}) for n, p in networks]}
        for kind, rows in records.items():
            inventory.apply_records(session, site=inventory.SiteRef(site_id, site_name), kind=kind, records=rows,
                                    now=NOW, complete=True, emit=False)
        build.refresh_site(session, site_id=site_id, now=NOW)


@pytest.fixture
def fleet(client: TestClient, runtime: Runtime, as_user: Switch) -> dict[str, str]:
    """paris: tenant p1 (dual stack); lyon: tenant p1 again, overlapping paris, plus tenant p2 holding a
    copy of paris's floating IP."""
    ids = {}
    for name in ("paris", "lyon"):
        created = client.post("/v1/sites", json=site_body(name))
        assert created.status_code == 201, created.text
        ids[name] = created.json()["id"]
    _store(runtime, ids["paris"], "paris", site_records(1))
    lyon = site_records(2)
    lyon["subnets"][0] = subnet("sn4-2", "net-2", "10.1.0.0/24")
    lyon["ports"][0] = port("vm-port-2", "net-2", [("sn4-2", "10.1.0.5")], mac="fa:16:3e:00:00:22", device="vm-2")
    lyon["subnets"].append(subnet("sn-p2", "net-p2", "192.168.7.0/24", project="p2"))
    lyon["ports"].append(port("p2-port", "net-p2", [("sn-p2", "192.168.7.9")], mac="fa:16:3e:77:00:01",
                              project="p2", device="vm-p2"))
    lyon["floating_ips"].append(fip("fip-p2", "203.0.113.101", "p2-port", project="p2"))
    _store(runtime, ids["lyon"], "lyon", lyon)
    with transaction(runtime.factory) as session:
        conflicts.detect(session, now=NOW)
    return ids


def _ips(client: TestClient, **params: Any) -> list[str]:
    response = client.get("/v1/addresses", params=params)
    assert response.status_code == 200, response.text
    return [row["ip"] for row in response.json()["items"]]


def test_two_tenants_see_only_their_own_addresses(client: TestClient, fleet: dict[str, str], as_user: Switch) -> None:
    everything = set(_ips(client))
    assert {"192.168.7.9", "10.1.0.5", "fd00:1::5", "203.0.113.11"} <= everything
    as_user(TENANT)
    mine = _ips(client)
    assert "192.168.7.9" not in mine and {"10.1.0.5", "fd00:1::5", "203.0.113.11", "203.0.113.101"} <= set(mine)
    assert _ips(client, ip="192.168.7.9") == []
    refused = client.get("/v1/addresses", params={"project": "p2"})
    assert refused.status_code == 403 and "own project" in refused.json()["detail"]
    as_user(OTHER)
    assert sorted(_ips(client)) == ["192.168.7.9", "203.0.113.101"]
    as_user(READER)
    assert set(_ips(client)) == set(mine)


def test_filters_pages_and_rows(client: TestClient, fleet: dict[str, str]) -> None:
    assert _ips(client, cidr="10.1.0.0/24") == ["10.1.0.1", "10.1.0.5", "10.1.0.5"]
    assert _ips(client, cidr="fd00::/8", site="paris") == ["fd00:1::5"]
    assert _ips(client, mac="FA:16:3E:77:00:01") == ["192.168.7.9"]
    assert set(_ips(client, device="web-1")) == {"10.1.0.5", "fd00:1::5", "203.0.113.101"}
    assert _ips(client, kind="gateway", version=4) == ["203.0.113.11", "203.0.113.12"]
    first = client.get("/v1/addresses", params={"limit": 2}).json()
    second = client.get("/v1/addresses", params={"limit": 2, "offset": first["next_offset"]}).json()
    assert first["next_offset"] == 2 and not {r["ip"] + r["site"] for r in first["items"]} & {
        r["ip"] + r["site"] for r in second["items"]}
    (row,) = client.get("/v1/addresses", params={"ip": "fd00:1::5"}).json()["items"]
    assert row["site"] == "paris" and row["subnet_cidr"] == "fd00:1::/64" and row["device_name"] == "web-1"
    assert row["mac"] == "fa:16:3e:00:00:01" and row["kind"] == "fixed" and row["ip_version"] == 6
    assert "observed_at" in row and "stale" in row


@pytest.mark.parametrize(("params", "status", "reason"), [
    ({"cidr": "10.0.0.1/8"}, 400, "did you mean 10.0.0.0/8"),
    ({"cidr": "10.0.0.0/99"}, 400, "not a valid CIDR"),
    ({"cidr": "fd00::/200"}, 400, "not a valid CIDR"),
    ({"ip": "10.0.0.300"}, 400, "not an IPv4 or IPv6"),
    ({"mac": "fa:16"}, 400, "not a MAC"),
    ({"kind": "fixed,bogus"}, 400, "'bogus' is not one of"),
    ({"version": "5"}, 400, "not 4 or 6"),
    ({"version": "x"}, 422, "version"),
    ({"format": "xml"}, 400, "not json or csv"),
    ({"limit": "5000"}, 400, "format=csv"),
    ({"limit": "0"}, 422, "limit"),
    ({"site": "nowhere"}, 404, "nowhere"),
])
def test_bad_input_is_a_4xx_with_the_reason(client: TestClient, fleet: dict[str, str], params: dict[str, str],
                                            status: int, reason: str) -> None:
    response = client.get("/v1/addresses", params=params)
    assert response.status_code == status and reason in response.json()["detail"], response.text


def test_csv_export(client: TestClient, fleet: dict[str, str], runtime: Runtime) -> None:
    with transaction(runtime.factory) as session:  # a server name that a spreadsheet would run
        inventory.apply_records(session, site=inventory.SiteRef(fleet["paris"], "paris"), kind="servers",
                                records=[Record(kind="servers", remote_id="vm-1", project_id="p1",
                                                name="=HYPERLINK(1)", status="ACTIVE", data={})],
                                now=NOW, complete=True, emit=False)
        build.refresh_site(session, site_id=fleet["paris"], now=NOW)
    response = client.get("/v1/addresses", params={"format": "csv", "site": "paris"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == len(_ips(client, site="paris")) == 5
    vm = next(r for r in rows if r["ip"] == "10.1.0.5")
    assert (vm["site"], vm["kind"], vm["mac"], vm["device_name"]) == ("paris", "fixed", "fa:16:3e:00:00:01",
                                                                       "'=HYPERLINK(1)")
    paged = client.get("/v1/addresses", params={"format": "csv", "limit": 2})
    assert paged.headers["x-next-offset"] == "2" and len(paged.text.strip().splitlines()) == 3


def test_summary_per_site_and_subnet(client: TestClient, fleet: dict[str, str], as_user: Switch) -> None:
    as_user(TENANT)
    body = client.get("/v1/addresses/summary").json()
    subnets = {(s["site"], s["cidr"]): s for s in body["subnets"]}
    assert set(subnets) == {("paris", "10.1.0.0/24"), ("paris", "fd00:1::/64"), ("lyon", "10.1.0.0/24"),
                            ("lyon", "fd00:2::/64")}
    assert (subnets[("paris", "10.1.0.0/24")]["used"], subnets[("paris", "10.1.0.0/24")]["free"]) == (2, 252)
    assert subnets[("paris", "fd00:1::/64")]["free"] == str(2**64 - 3)  # beyond 2**53: a string
    paris = next(s for s in body["sites"] if s["site"] == "paris")
    assert paris["v4"] == {"used": 2, "free": 252} and paris["v6"]["used"] == 1
    as_user(OTHER)
    assert [s["cidr"] for s in client.get("/v1/addresses/summary").json()["subnets"]] == ["192.168.7.0/24"]


def test_public_duplicates_show_a_tenant_only_its_own_holder(client: TestClient, fleet: dict[str, str],
                                                             as_user: Switch) -> None:
    (admin_view,) = client.get("/v1/addresses/conflicts").json()["items"]
    assert admin_view["kind"] == "duplicate_public_ip" and admin_view["count"] == 2 and admin_view["hidden"] == 0
    as_user(OTHER)
    (seen,) = client.get("/v1/addresses/conflicts").json()["items"]
    assert seen["hidden"] == 1 and [m["site"] for m in seen["members"]] == ["lyon"]
    assert "paris" not in str(seen)
    assert client.get("/v1/addresses/conflicts", params={"kind": "nope"}).status_code == 400


def test_routing_domains_of_a_tenant(client: TestClient, fleet: dict[str, str], as_user: Switch) -> None:
    as_user(TENANT)
    members = [{"site": "paris", "network": "net-1"}, {"site": "lyon", "network": "net-2"}]
    created = client.post("/v1/routing-domains", json={"name": "vpn", "members": members})
    assert created.status_code == 201, created.text
    domain = created.json()
    assert domain["project_id"] == "p1" and domain["networks"] == 2 and domain["conflicts"] == 2
    kinds = sorted(c["kind"] for c in client.get("/v1/addresses/conflicts").json()["items"])
    assert kinds == ["duplicate_ip", "duplicate_public_ip", "overlapping_subnets"]
    events = client.get("/v1/events", params={"kind": "address.conflict"}).json()["events"]
    assert len(events) == 3  # its two domain conflicts and its own floating IP's duplicate
    assert client.post("/v1/routing-domains", json={"name": "vpn"}).status_code == 409
    for body, reason in (({"name": "x", "members": [{"site": "lyon", "network": "net-p2"}]}, "not a network of your"),
                         ({"name": "x", "members": [{"project": "p2"}]}, "only its own project"),
                         ({"name": "x", "project": "p2"}, "own project only"),
                         ({"name": "x", "members": [{"site": "mars", "network": "n"}]}, "no site")):
        refused = client.post("/v1/routing-domains", json=body)
        assert refused.status_code == 400 and reason in refused.json()["detail"], refused.text
    for body in ({"name": "x", "members": [{"site": "paris"}]}, {"name": "x", "members": [{"project": "p1",
                                                                                            "site": "paris"}]},
                 {"name": ""}, {"name": "x", "colour": "red"}):
        assert client.post("/v1/routing-domains", json=body).status_code == 422
    as_user(OTHER)
    assert client.get(f"/v1/routing-domains/{domain['id']}").status_code == 404
    assert client.get("/v1/routing-domains").json()["items"] == []
    assert client.delete("/v1/routing-domains/vpn").status_code == 404
    as_user(TENANT)
    patched = client.patch("/v1/routing-domains/vpn", json={"members": members[:1]})
    assert patched.status_code == 200 and patched.json()["conflicts"] == 0
    cleared = client.get("/v1/events", params={"kind": "address.conflict_cleared"}).json()["events"]
    assert len(cleared) == 2
    assert client.delete("/v1/routing-domains/vpn").status_code == 204
    assert client.get("/v1/routing-domains/vpn").status_code == 404
    as_user(READER)
    assert client.post("/v1/routing-domains", json={"name": "r"}).status_code == 403


def test_a_fleet_admin_declares_any_network_and_whole_projects(client: TestClient, fleet: dict[str, str]) -> None:
    created = client.post("/v1/routing-domains", json={"name": "wan", "members": [
        {"project": "p1"}, {"site": "lyon", "network": "net-p2"}]})
    assert created.status_code == 201, created.text
    assert created.json()["project_id"] is None and created.json()["networks"] == 3
    assert created.json()["conflicts"] == 2  # p1's overlap and duplicate IP, p2's network does not clash
    assert client.get("/v1/routing-domains").json()["items"][0]["name"] == "wan"


def test_address_pools_through_the_api(client: TestClient, fleet: dict[str, str], as_user: Switch) -> None:
    shared = client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.128.0.0/22", "shared": True})
    assert shared.status_code == 201 and shared.json()["project_id"] is None
    as_user(TENANT)
    got = [client.post("/v1/address-pools/wan/allocations", json={"site": site, "prefix_length": 23})
           for site in ("paris", "lyon")]
    assert [g.status_code for g in got] == [201, 201]
    assert [g.json()["cidr"] for g in got] == ["10.128.0.0/23", "10.128.2.0/23"]
    full = client.post("/v1/address-pools/wan/allocations", json={"site": "paris", "prefix_length": 24})
    assert full.status_code == 409 and "no free /24 left" in full.json()["detail"]
    for body, status, reason in (({"site": "paris", "prefix_length": 8}, 400, "outside 22..32"),
                                 ({"site": "paris"}, 400, "required"),
                                 ({"site": "mars", "prefix_length": 24}, 404, "mars"),
                                 ({"site": "paris", "prefix_length": "x"}, 422, "prefix_length")):
        refused = client.post("/v1/address-pools/wan/allocations", json=body)
        assert refused.status_code == status and reason in refused.json()["detail"], refused.text
    mine = client.post("/v1/address-pools", json={"name": "mine", "cidr": "fd00:abcd::/48"})
    assert mine.status_code == 201 and mine.json()["project_id"] == "p1"
    assert client.post("/v1/address-pools", json={"name": "bad", "cidr": "fd00::1/48"}).status_code == 400
    as_user(OTHER)
    assert client.get("/v1/address-pools/mine").status_code == 404
    assert client.get("/v1/address-pools/wan/allocations").json()["items"] == []  # not p1's prefixes
    assert client.delete(f"/v1/address-pools/wan/allocations/{got[0].json()['id']}").status_code == 404
    as_user(TENANT)
    assert client.get("/v1/address-pools/wan").json()["allocated"] == 2
    assert client.delete("/v1/address-pools/wan").status_code == 403  # shared: fleet admins only
    assert client.delete(f"/v1/address-pools/wan/allocations/{got[0].json()['id']}").status_code == 204
    again = client.post("/v1/address-pools/wan/allocations", json={"site": "lyon", "prefix_length": 24})
    assert again.status_code == 201 and again.json()["cidr"] == "10.128.0.0/24"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("DELETE", "/v1/address-pools/wan/allocations/99999999999999999999999", None),
    ("DELETE", "/v1/address-pools/wan/allocations/0", None),
    ("POST", "/v1/address-pools", {"name": "p", "cidr": "x" * 65}),
    ("POST", "/v1/address-pools", {"name": "p", "cidr": "10.0.0.0/8", "shared": "maybe"}),
    ("POST", "/v1/routing-domains", {"name": "d", "members": [{"site": "paris", "network": "n\u202e"}]}),
    ("POST", "/v1/routing-domains", {"name": "d", "members": [{"project": "p1"}] * 1001}),
    ("GET", "/v1/addresses?device=" + "d" * 300, None),
    ("GET", "/v1/addresses?offset=-1", None),
])
def test_malformed_requests_are_4xx(client: TestClient, fleet: dict[str, str], method: str, path: str,
                                    body: Any) -> None:
    client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.128.0.0/22", "shared": True})
    response = client.request(method, path, json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)


def test_removing_a_site_clears_the_conflicts_it_held(client: TestClient, fleet: dict[str, str],
                                                      as_user: Switch) -> None:
    (conflict,) = client.get("/v1/addresses/conflicts").json()["items"]
    assert {m["site"] for m in conflict["members"]} == {"paris", "lyon"}
    assert client.delete("/v1/sites/lyon").status_code == 204
    assert client.get("/v1/addresses/conflicts").json()["items"] == []
    assert client.get("/v1/addresses", params={"site": "lyon"}).status_code == 404
    as_user(OTHER)  # p2 held the copy on lyon: it hears that the conflict is over
    (cleared,) = client.get("/v1/events", params={"kind": "address.conflict_cleared"}).json()["events"]
    assert "no longer held on another site" in cleared["message"] and "paris" not in cleared["message"]


def test_every_list_pages_with_next_offset(client: TestClient, fleet: dict[str, str]) -> None:
    for n in range(3):
        assert client.post("/v1/routing-domains", json={"name": f"d{n}"}).status_code == 201
        assert client.post("/v1/address-pools", json={"name": f"p{n}", "cidr": f"10.{100 + n}.0.0/16"}
                           ).status_code == 201
    for _ in range(3):
        assert client.post("/v1/address-pools/p0/allocations", json={"site": "paris", "prefix_length": 24}
                           ).status_code == 201
    for path in ("/v1/routing-domains", "/v1/address-pools", "/v1/address-pools/p0/allocations"):
        first = client.get(path, params={"limit": 2}).json()
        rest = client.get(path, params={"limit": 2, "offset": first["next_offset"]}).json()
        assert first["next_offset"] == 2 and len(first["items"]) == 2, path
        assert rest["next_offset"] is None and len(rest["items"]) == 1, path
    page = client.get("/v1/addresses/conflicts", params={"limit": 1}).json()
    assert len(page["items"]) == 1 and page["next_offset"] is None  # the one duplicate public IP


def test_routing_domain_writes_are_rate_limited_like_fan_out(runtime_factory: Callable[..., Runtime]) -> None:
    from skyfleet.api.app import create_app
    from skyfleet.api.deps import get_principal

    runtime = runtime_factory(None, None, fanout_burst=2, fanout_rate=0.01)
    with TestClient(create_app(runtime, start_workers=False)) as api:
        api.app.dependency_overrides[get_principal] = lambda: TENANT  # type: ignore[attr-defined]
        statuses = [api.post("/v1/routing-domains", json={"name": f"d{i}"}).status_code for i in range(3)]
        assert statuses == [201, 201, 429]
        assert api.get("/v1/routing-domains").status_code == 200  # reads are not limited
