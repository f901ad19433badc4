"""A routing domain meshed with site-to-site IPsec over a declared network, on three simulated sites
that share nothing, as the tenant of a simulated home Keystone. Two sites' Neutron offer VPNaaS, the
third does not: the two get a VPN service on the network's router and a connection to each other
(ACTIVE: the simulator matches both ends and the key), the third a failed binding that says VPNaaS is
not available there, and its peers stop dialling it at the next audit. The key never shows in an
answer, a task payload or an event; a key changed by hand is set back by the audit; the network and
the routing domain cannot be deleted under the mesh; deleting the mesh removes what Skyfleet made."""

from __future__ import annotations

from typing import Any

import openstack
from sqlalchemy import select

from skyfleet.db.engine import read_only
from skyfleet.domains.operations.models import Task
from skyfleet.reconcile.sync_audit import run_sync_audit
from tests.functional.test_networks_on_simulator import Fleet, as_tenant, fleet, run

__all__ = ["fleet"]
PSK = "a-shared-secret-for-the-mesh-0123"


def vpn_objects(conn: Any, collection: str) -> list[dict[str, Any]]:
    key = collection.replace("-", "_")
    items: list[dict[str, Any]] = conn.network.get(f"/vpn/{collection}",
                                                   params={"project_id": conn.current_project_id}).json()[key]
    return [i for i in items if str(i.get("description", "")).startswith("skyfleet:")]


def test_a_routing_domain_meshed_over_a_declared_network(fleet: Fleet) -> None:
    sim, runtime, client, engine, tenant, _admin = fleet
    one, two, three = sim.site_names()[1:]
    sim.set_vpnaas(three, False)
    pid = openstack.connect(**sim.cloud(sim.site_names()[0], user="demo")).current_project_id
    assert client.post("/v1/address-pools", json={"name": "wan", "cidr": "10.80.0.0/22"},
                       headers=tenant).status_code == 201
    assert client.post("/v1/networks", headers=tenant, json={"name": "app", "pool": "wan",
                                                             "router": {"external_network": "public"}}
                       ).status_code == 202
    domain = client.post("/v1/routing-domains", json={"name": "mesh", "members": [{"project": pid}]}, headers=tenant)
    assert domain.status_code == 201, domain.text
    early = client.post("/v1/routing-domains/mesh/vpn", json={"network": "app"}, headers=tenant)
    assert early.status_code == 409 and "a mesh needs two or more" in early.json()["detail"], early.text
    run(runtime, engine)
    cidrs = {p["site_name"]: p["cidr"] for p in client.get("/v1/networks/app", headers=tenant)
             .json()["options"]["prefixes"].values()}

    short = client.post("/v1/routing-domains/mesh/vpn", json={"network": "app", "psk": "tiny-key"}, headers=tenant)
    assert short.status_code == 400 and "16 to 128 characters" in short.text and "tiny-key" not in short.text
    unknown = client.post("/v1/routing-domains/mesh/vpn", json={"network": "nope"}, headers=tenant)
    assert unknown.status_code == 404 and "no declared network 'nope'" in unknown.json()["detail"]
    weak = client.post("/v1/routing-domains/mesh/vpn", json={"network": "app", "ike_policy": {"pfs": "group1"}},
                       headers=tenant)
    assert weak.status_code == 422 and "ike_policy.pfs" in weak.json()["detail"]
    made = client.post("/v1/routing-domains/mesh/vpn", json={"network": "app", "psk": PSK}, headers=tenant)
    assert made.status_code == 202, made.text
    assert PSK not in made.text and made.json()["psk_set"] is True
    again = client.post("/v1/routing-domains/mesh/vpn", json={"network": "app"}, headers=tenant)
    assert again.status_code == 409 and "meshed already" in again.json()["detail"]
    run(runtime, engine)

    def sites() -> dict[str, dict[str, Any]]:
        shown = client.get("/v1/routing-domains/mesh/vpn", headers=tenant)
        assert shown.status_code == 200 and PSK not in shown.text, shown.text
        return {s["site_name"]: s for s in shown.json()["sites"]}

    seen = sites()
    assert seen[three]["status"] == "failed"
    assert "not available: the site's Neutron has no vpnaas extension" in seen[three]["error"]
    assert (seen[one]["status"], seen[two]["status"]) == ("in-sync", "in-sync"), seen
    assert two in seen[one]["connections"] and one in seen[two]["connections"], seen  # the first one up waits
    # the audit: the site without VPNaaS is no peer any more, statuses as each site reports them now
    assert run_sync_audit(runtime.factory) >= 1
    run(runtime, engine)
    seen = sites()
    assert seen[one]["connections"] == {two: "ACTIVE"} and seen[two]["connections"] == {one: "ACTIVE"}, \
        (seen, _tasks(runtime))
    conns = {site: as_tenant(sim, site) for site in (one, two)}
    for site, other in ((one, two), (two, one)):  # what the tenant's own client sees in its project
        (link,) = vpn_objects(conns[site], "ipsec-site-connections")
        assert link["peer_address"] == seen[other]["address"] and link["psk"] == PSK
        groups = {g["type"]: g["endpoints"] for g in vpn_objects(conns[site], "endpoint-groups")}
        assert groups["cidr"] == [cidrs[other]] and len(groups["subnet"]) == 1
        assert len(vpn_objects(conns[site], "vpnservices")) == 1
    with read_only(runtime.factory) as session:  # sealed in the work rows too
        payloads = [str(p) for p in session.scalars(select(Task.payload).where(Task.kind == "vpn.mesh"))]
    assert payloads and all(PSK not in p and "psk_box" in p for p in payloads)
    events = client.get("/v1/events", headers=tenant).text
    assert PSK not in events

    # drift: the key changed by hand on one site is set back by the audit
    (link,) = vpn_objects(conns[one], "ipsec-site-connections")
    conns[one].network.put(f"/vpn/ipsec-site-connections/{link['id']}",
                           json={"ipsec_site_connection": {"psk": "changed-by-hand-0123456789"}})
    assert run_sync_audit(runtime.factory) >= 1
    run(runtime, engine)
    assert vpn_objects(conns[one], "ipsec-site-connections")[0]["psk"] == PSK
    assert sites()[one]["connections"] == {two: "ACTIVE"}

    # nothing underneath goes while the mesh stands
    blocked = client.delete("/v1/networks/app", headers=tenant)
    assert blocked.status_code == 409 and "delete the mesh first" in blocked.json()["detail"]
    assert client.delete("/v1/routing-domains/mesh", headers=tenant).status_code == 409
    assert client.delete("/v1/routing-domains/mesh/vpn", headers=tenant).status_code == 202
    run(runtime, engine)
    assert client.get("/v1/routing-domains/mesh/vpn", headers=tenant).status_code == 404
    for conn in conns.values():
        for collection in ("ipsec-site-connections", "endpoint-groups", "vpnservices", "ikepolicies",
                           "ipsecpolicies"):
            assert vpn_objects(conn, collection) == [], collection
    assert client.delete("/v1/networks/app", headers=tenant).status_code == 202
    assert client.delete("/v1/routing-domains/mesh", headers=tenant).status_code == 204


def _tasks(runtime: Any) -> list[Any]:
    with read_only(runtime.factory) as session:
        return [(t.site_id, t.state, t.last_error, t.result, t.payload.get("peers"))
                for t in session.scalars(select(Task).where(Task.kind == "vpn.mesh").order_by(Task.created_at))]
