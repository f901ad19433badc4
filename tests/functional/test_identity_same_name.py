"""One name in two domains: Keystone names projects, users and groups within a domain, so ``alice``
of domain Red and ``alice`` of domain Blue are two declarations, each converged in its own domain on
every site, and shown, changed and deleted apart (``?domain=``). A bare name that means both is a 409
that says how to choose. Role assignments name their user's domain, so each alice gets her own role.
"""

from __future__ import annotations

from typing import Any

from tests.functional.test_identity_on_simulator import bindings, fleet, run, two_keystones

__all__ = ["fleet", "two_keystones"]  # fixtures used here


def ids_in(ks: Any, name: str, domain: str) -> str:
    found = ks.user_by_name(name, ks.domain_by_name(domain)["id"])
    assert found is not None, (name, domain)
    return str(found["id"])


def test_one_name_in_two_domains_is_two_declarations(fleet: Any) -> None:
    sim, runtime, client, engine = fleet
    a, _, c, _ = sim.site_names()
    for domain in ("Red", "Blue"):
        assert client.post("/v1/identity/domains", json={"spec": {"name": domain}}).status_code == 202
        for path, spec in (
            ("projects", {"name": "lab"}),
            ("groups", {"name": "ops"}),
            ("users", {"name": "alice", "description": f"alice of {domain}", "groups": ["ops"]}),
        ):
            made = client.post(f"/v1/identity/{path}", json={"spec": {**spec, "domain": domain}})
            assert made.status_code == 202, made.text
            assert made.json()["project_id"] is None  # a domain is no project
        put = client.put(
            "/v1/identity/role-assignments",
            json={"spec": {"user": "alice", "project": "lab", "role": "member", "domain": domain}},
        )
        assert put.status_code == 202, put.text
    again = client.post("/v1/identity/users", json={"spec": {"name": "alice", "domain": "Red"}})
    assert again.status_code == 409 and "in domain 'Red'" in again.text
    run(runtime, engine)

    both = client.get("/v1/identity/users/alice")
    assert both.status_code == 409 and "Blue, Red" in both.text and "?domain=" in both.text
    for domain in ("Red", "Blue"):
        for path in ("projects/lab", "groups/ops", "users/alice"):
            shown = client.get(f"/v1/identity/{path}", params={"domain": domain})
            assert shown.status_code == 200 and shown.json()["spec"]["domain"] == domain, shown.text
            assert {(b["status"], b["owned"]) for b in shown.json()["bindings"]} == {("in-sync", True)}, path
        assert {b["status"] for b in bindings(client, f"role-assignments/user:alice:lab:member@{domain}").values()} == {
            "in-sync"
        }
        listed = client.get("/v1/identity/users", params={"domain": domain}).json()["resources"]
        assert [(r["name"], r["spec"]["domain"]) for r in listed] == [("alice", domain)]
    for site in (a, c):
        ks = sim.state(site).keystone
        red, blue = ids_in(ks, "alice", "Red"), ids_in(ks, "alice", "Blue")
        assert red != blue and ks.users[red]["description"] == "alice of Red"
        for user, domain in ((red, "Red"), (blue, "Blue")):
            lab = ks.project_by_name("lab", ks.domain_by_name(domain)["id"])
            assert {r["name"] for r in ks.user_roles(user, lab["id"])} == {"member"}, (site, domain)

    # changed apart: only Blue's alice gets the new description; a domain cannot be changed under a name
    changed = client.patch(
        "/v1/identity/users/alice", params={"domain": "Blue"}, json={"spec": {"description": "the blue one"}}
    )
    assert changed.status_code == 202, changed.text
    moved = client.patch("/v1/identity/users/alice", params={"domain": "Blue"}, json={"spec": {"domain": "Red"}})
    assert moved.status_code == 400 and "spec.domain cannot change" in moved.text
    assert client.patch("/v1/identity/users/alice", json={"spec": {"description": "x"}}).status_code == 409
    assert client.get("/v1/identity/users/alice", params={"domain": "Green"}).status_code == 404
    run(runtime, engine)
    ks = sim.state(c).keystone
    assert ks.users[ids_in(ks, "alice", "Blue")]["description"] == "the blue one"
    assert ks.users[ids_in(ks, "alice", "Red")]["description"] == "alice of Red"

    # deleted apart: Red's alice and her grant are purged; Blue's stay, still holding her role
    for ref in ("users/alice", "role-assignments/user:alice:lab:member@Red"):
        gone = client.delete(
            f"/v1/identity/{ref}", params={"purge": True, **({"domain": "Red"} if "users" in ref else {})}
        )
        assert gone.status_code == 202, gone.text
    run(runtime, engine)
    assert client.get("/v1/identity/users/alice", params={"domain": "Red"}).status_code == 404
    assert client.get("/v1/identity/users/alice").json()["spec"]["domain"] == "Blue"  # one left: the bare name
    for site in (a, c):
        ks = sim.state(site).keystone
        assert ks.user_by_name("alice", ks.domain_by_name("Red")["id"]) is None
        blue = ids_in(ks, "alice", "Blue")
        lab = ks.project_by_name("lab", ks.domain_by_name("Blue")["id"])
        assert {r["name"] for r in ks.user_roles(blue, lab["id"])} == {"member"}


def test_a_query_domain_on_a_declaration_must_agree_with_its_spec(fleet: Any) -> None:
    # once ignored: POST /v1/identity/users?domain=Blue with no spec.domain declared the user in Default
    _sim, _runtime, client, _engine = fleet
    assert client.post("/v1/identity/domains", json={"spec": {"name": "Blue"}}).status_code == 202
    silent = client.post("/v1/identity/users", params={"domain": "Blue"}, json={"spec": {"name": "bob"}})
    assert silent.status_code == 400 and "spec.domain is 'Default'" in silent.json()["detail"], silent.text
    other = client.post("/v1/identity/projects", params={"domain": "Red"},
                        json={"spec": {"name": "lab", "domain": "Blue"}})
    assert other.status_code == 400 and "'Red'" in other.json()["detail"], other.text
    odd = client.post("/v1/identity/domains", params={"domain": "Blue"}, json={"spec": {"name": "Green"}})
    assert odd.status_code == 400 and "not named within a domain" in odd.json()["detail"], odd.text
    assert client.get("/v1/identity/users").json()["resources"] == []  # nothing declared by the refusals
    agreed = client.post("/v1/identity/users", params={"domain": "Blue"},
                         json={"spec": {"name": "bob", "domain": "Blue"}})
    assert agreed.status_code == 202 and agreed.json()["spec"]["domain"] == "Blue", agreed.text
