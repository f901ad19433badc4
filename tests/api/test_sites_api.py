"""The /v1/sites API with a scripted prober, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support import FakeProber, site_body


def create(client: TestClient, name: str, **extra: Any) -> dict[str, Any]:
    response = client.post("/v1/sites", json=site_body(name, **extra))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_register_records_capabilities_and_hides_secrets(client: TestClient) -> None:
    site = create(client, "paris-1", labels={"tier": "edge", "country": "fr"}, group="eu",
                  location={"latitude": 48.8, "longitude": 2.3}, description="shop 12")
    assert site["availability"] == "online"
    assert site["labels"] == {"tier": "edge", "country": "fr"}
    assert site["location"] == {"latitude": 48.8, "longitude": 2.3}
    assert {s["type"] for s in site["capabilities"]["services"]} == {"identity", "compute"}
    compute = next(s for s in site["capabilities"]["services"] if s["type"] == "compute")
    assert compute["max_microversion"] == "2.96"
    assert site["capabilities"]["availability_zones"] == ["nova"]
    assert "password" not in site["auth"]
    assert site["auth"]["auth_type"] == "v3password"
    assert site["auth"]["username"] == "admin"


def test_unreachable_site_is_stored_as_unknown_with_the_error(client: TestClient, prober: FakeProber) -> None:
    prober.down.add("http://far.example.test:5000/v3")
    site = create(client, "far")
    assert site["availability"] == "unknown"
    assert "ConnectFailure" in site["last_error"]
    assert client.get("/v1/sites/far").status_code == 200


def test_show_by_id_or_name_update_and_delete(client: TestClient) -> None:
    site = create(client, "lyon")
    assert client.get(f"/v1/sites/{site['id']}").json()["name"] == "lyon"
    changed = client.patch("/v1/sites/lyon", json={"labels": {"tier": "core"}, "group": "eu",
                                                    "description": "dc"}).json()
    assert changed["labels"] == {"tier": "core"} and changed["group"] == "eu"
    renamed = client.patch("/v1/sites/lyon", json={"name": "lyon-2"}).json()
    assert renamed["id"] == site["id"]
    assert client.delete("/v1/sites/lyon-2").status_code == 204
    assert client.get(f"/v1/sites/{site['id']}").status_code == 404


def test_manage_and_unmanage(client: TestClient) -> None:
    create(client, "nice")
    assert client.post("/v1/sites/nice/unmanage").json()["managed"] is False
    assert [s["name"] for s in client.get("/v1/sites?managed=false").json()["sites"]] == ["nice"]
    assert client.post("/v1/sites/nice/manage").json()["managed"] is True
    kinds = [e["kind"] for e in client.get("/v1/events?site=nice").json()["events"]]
    assert kinds[:2] == ["site.managed", "site.unmanaged"]


def test_filters_selector_group_availability_name(client: TestClient, prober: FakeProber) -> None:
    prober.down.add("http://c.example.test:5000/v3")
    create(client, "a", labels={"tier": "edge", "country": "fr"}, group="eu")
    create(client, "b", labels={"tier": "edge", "country": "de"}, group="eu")
    create(client, "c", labels={"tier": "core"}, group="na")

    def names(query: str) -> list[str]:
        response = client.get(f"/v1/sites?{query}")
        assert response.status_code == 200, response.text
        return [s["name"] for s in response.json()["sites"]]

    assert names("selector=tier=edge,country=fr") == ["a"]
    assert names("selector=country!=fr") == ["b", "c"]
    assert names("selector=country") == ["a", "b"]
    assert names("selector=!country") == ["c"]
    assert names("group=eu") == ["a", "b"]
    assert names("availability=unknown") == ["c"]
    assert names("availability=online,unknown") == ["a", "b", "c"]
    assert names("name=B") == ["b"]


def test_pagination_walks_every_site_once(client: TestClient) -> None:
    for i in range(7):
        create(client, f"s{i:02d}")
    seen: list[str] = []
    marker = None
    while True:
        params = {"limit": 3} | ({"marker": marker} if marker else {})
        page = client.get("/v1/sites", params=params).json()
        seen += [s["name"] for s in page["sites"]]
        marker = page["next_marker"]
        if marker is None:
            break
    assert seen == [f"s{i:02d}" for i in range(7)]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"name": "x"}, 422, "auth: field required"),
        (site_body("x") | {"colour": "red"}, 422, "colour: unknown field"),
        (site_body("x", url="not a url"), 422, "auth.auth_url"),
        (site_body("bad name!"), 422, "name"),
        (site_body("x") | {"labels": {"tier": 5}}, 422, "labels.tier"),
        (site_body("x") | {"labels": {"bad key": "v"}}, 422, "label key"),
        (site_body("x") | {"location": {"latitude": 91, "longitude": 0}}, 422, "latitude"),
        ({"name": "x", "auth": {"auth_url": "http://k:5000/v3", "username": "u"}}, 422, "password"),
        ({"name": "x", "auth": {"auth_url": "http://k:5000/v3", "application_credential_id": "i"}}, 422,
         "application_credential_secret"),
    ],
)
def test_bad_input_gets_a_4xx_with_the_reason(client: TestClient, body: dict[str, Any], status: int,
                                              fragment: str) -> None:
    response = client.post("/v1/sites", json=body)
    assert response.status_code == status
    error = response.json()
    assert set(error) == {"code", "title", "detail", "request_id"}
    assert error["code"] == status
    assert fragment in error["detail"]


def test_duplicate_name_is_409_and_unknown_id_404(client: TestClient) -> None:
    create(client, "dup")
    response = client.post("/v1/sites", json=site_body("dup"))
    assert response.status_code == 409 and "already exists" in response.json()["detail"]
    create(client, "other")
    assert client.patch("/v1/sites/other", json={"name": "dup"}).status_code == 409
    missing = client.get("/v1/sites/nope")
    assert missing.json() == {"code": 404, "title": "Not Found", "detail": "no site with id or name 'nope'",
                              "request_id": missing.headers["x-request-id"]}
    assert client.delete("/v1/sites/nope").status_code == 404


def test_bad_query_parameters_are_4xx(client: TestClient) -> None:
    assert client.get("/v1/sites?limit=0").status_code == 422
    assert client.get("/v1/sites?limit=abc").status_code == 422
    assert client.get("/v1/sites?availability=sleepy").status_code == 400
    assert client.get("/v1/sites?selector=a b").status_code == 400
    assert client.get("/v1/sites?marker=ghost").status_code == 404
    assert client.post("/v1/sites", content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 422


def test_app_credential_auth_is_accepted_and_secret_hidden(client: TestClient) -> None:
    body = {"name": "ac", "auth": {"auth_url": "http://ac.example.test:5000/v3",
                                   "application_credential_id": "abc",
                                   "application_credential_secret": "app-cred-secret-1"}}
    response = client.post("/v1/sites", json=body)
    assert response.status_code == 201
    assert response.json()["auth"]["auth_type"] == "v3applicationcredential"
    assert "app-cred-secret-1" not in response.text


def test_meta_endpoints_and_openapi(client: TestClient) -> None:
    assert client.get("/").json()["name"] == "skyfleet"
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    spec = client.get("/openapi.json").json()
    assert "/v1/sites" in spec["paths"] and "/v1/events" in spec["paths"]
    assert client.get("/docs").status_code == 200
