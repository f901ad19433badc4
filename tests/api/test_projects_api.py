"""/v1/projects/{id}/mappings: the project mapping rule as the API shows it, and who may change it."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.projects import service as projects
from skyfleet.domains.sites.service import get_site
from tests.support import TENANT, site_body


def test_rule_explicit_then_by_name(client: TestClient, as_user: Callable[[Principal], None],
                                    runtime: Runtime) -> None:
    for name in ("s1", "s2"):
        assert client.post("/v1/sites?probe=false", json=site_body(name)).status_code == 201
    assert client.put("/v1/projects/p1/mappings/s1", json={"remote_project_id": "r-42"}).status_code == 200
    listed = {m["site_name"]: m for m in client.get("/v1/projects/p1/mappings").json()["mappings"]}
    assert (listed["s1"]["source"], listed["s1"]["remote_project_id"]) == ("explicit", "r-42")
    assert listed["s2"]["source"] == "by-name"
    with transaction(runtime.factory) as session:
        s1 = get_site(session, "s1")
        assert projects.explicit_mapping(session, project_id="p1", site_id=s1.id) == "r-42"
        assert projects.explicit_mapping(session, project_id="p2", site_id=s1.id) is None
    assert client.put("/v1/projects/p1/mappings/s1", json={"remote_project_id": "r-43"}).json()[
        "remote_project_id"] == "r-43"
    assert client.delete("/v1/projects/p1/mappings/s1").status_code == 204
    assert client.delete("/v1/projects/p1/mappings/s1").status_code == 404
    assert client.get("/v1/projects/p1/mappings").json()["mappings"][0]["source"] == "by-name"


def test_shared_keystone_site_keeps_the_id(runtime_factory: Callable[..., Runtime]) -> None:
    from skyfleet.api.app import create_app

    rt = runtime_factory(None, None, home_auth_url="http://home.example.test:5000/v3/")
    with TestClient(create_app(rt, start_workers=False)) as c:
        c.post("/v1/sites?probe=false", json=site_body("h", url="http://home.example.test:5000"))
        c.post("/v1/sites?probe=false", json=site_body("far"))
        listed = {m["site_name"]: m for m in c.get("/v1/projects/p9/mappings").json()["mappings"]}
    assert (listed["h"]["source"], listed["h"]["remote_project_id"]) == ("shared-keystone", "p9")
    assert listed["far"]["source"] == "by-name"


def test_tenants_read_their_own_and_never_write(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    assert client.post("/v1/sites?probe=false", json=site_body("s1")).status_code == 201
    as_user(TENANT)
    assert client.get("/v1/projects/p1/mappings").status_code == 200
    assert client.get("/v1/projects/p2/mappings").status_code == 403
    denied = client.put("/v1/projects/p1/mappings/s1", json={"remote_project_id": "x"})
    assert denied.status_code == 403 and "admin" in denied.json()["detail"]


def test_bad_input_is_4xx(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    assert client.put("/v1/projects/p1/mappings/nowhere", json={"remote_project_id": "x"}).status_code == 404
    assert client.post("/v1/sites?probe=false", json=site_body("s1")).status_code == 201
    assert client.put("/v1/projects/p1/mappings/s1", json={"remote_project_id": "a b"}).status_code == 422
    assert client.put("/v1/projects/p1/mappings/s1", json={}).status_code == 422


def test_resolve_follows_the_rule_in_order(runtime: Runtime, client: TestClient,
                                           as_user: Callable[[Principal], None]) -> None:
    home = "http://home.example.test:5000/v3"
    for name, url in (("shared", "http://home.example.test:5000"), ("alone", None)):
        assert client.post("/v1/sites?probe=false", json=site_body(name, url=url)).status_code == 201
    with transaction(runtime.factory) as session:
        shared, alone = get_site(session, "shared"), get_site(session, "alone")
        assert projects.resolve(session, project_id="p1", site=shared, home_auth_url=home) == \
            projects.Resolution("p1", projects.SHARED)
        assert projects.resolve(session, project_id="p1", site=alone, home_auth_url=home) == \
            projects.Resolution(None, projects.BY_NAME)
        projects.set_mapping(session, project_id="p1", site_id=shared.id, remote_project_id="x-9")
        assert projects.resolve(session, project_id="p1", site=shared, home_auth_url=home) == \
            projects.Resolution("x-9", projects.EXPLICIT)
        assert projects.explicit_mappings(session, project_ids=["p1", "p2"]) == {("p1", shared.id): "x-9"}
