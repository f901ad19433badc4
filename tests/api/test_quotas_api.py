"""/v1/quotas and /v1/quota-classes: limits, defaults, classes, validation and who may do what."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.auth import Principal
from tests.support import TENANT


def test_defaults_class_and_overrides_stack(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    assert client.get("/v1/quotas/defaults").json()["cores"] == 20
    assert client.put("/v1/quotas/defaults", json={"limits": {"cores": 40}}).json()["cores"] == 40
    assert client.put("/v1/quota-classes/gold", json={"limits": {"cores": 100, "ram": -1}}).status_code == 200
    body = client.put("/v1/quotas/p1", json={"quota_class": "gold", "limits": {"instances": 7}}).json()
    assert (body["limits"]["cores"], body["limits"]["ram"], body["limits"]["instances"]) == (100, -1, 7)
    assert body["limits"]["volumes"] == 10 and body["overrides"] == {"instances": 7}
    assert client.get("/v1/quotas/p2").json()["limits"]["cores"] == 40
    assert {c["name"] for c in client.get("/v1/quota-classes").json()["classes"]} == {"default", "gold"}
    assert client.delete("/v1/quotas/p1").status_code == 204
    assert client.get("/v1/quotas/p1").json()["limits"]["cores"] == 40
    assert client.delete("/v1/quotas/p1").status_code == 404
    assert client.delete("/v1/quota-classes/gold").status_code == 204
    assert client.get("/v1/quota-classes/gold").status_code == 404


@pytest.mark.parametrize("body, needle", [
    ({"limits": {"cpus": 3}}, "unknown resource"),
    ({"limits": {"cores": -2}}, "-1"),
    ({"mode": "loose"}, "mode"),
    ({"policy": "random"}, "policy"),
    ({"weights": {"s1": -1}}, "weights"),
    ({"surprise": 1}, "surprise"),
])
def test_bad_input_is_422_with_the_reason(client: TestClient, as_user: Callable[[Principal], None],
                                          body: dict[str, object], needle: str) -> None:
    response = client.put("/v1/quotas/p1", json=body)
    assert response.status_code == 422 and needle in response.text


def test_unknown_class_is_400(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    response = client.put("/v1/quotas/p1", json={"quota_class": "platinum"})
    assert response.status_code == 400 and "platinum" in response.json()["detail"]


def test_tenants_read_their_own_only(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    client.put("/v1/quotas/p1", json={"limits": {"cores": 8}})
    as_user(TENANT)
    assert client.get("/v1/quotas/p1").json()["limits"]["cores"] == 8
    usage = client.get("/v1/quotas/p1/usage").json()
    assert usage["usage"]["cores"] == 0 and usage["sites"] == []
    assert client.get("/v1/quotas/p2").status_code == 403
    assert client.get("/v1/quotas/p2/usage").status_code == 403
    assert client.get("/v1/quotas/defaults").status_code == 200
    for method, url, body in (("PUT", "/v1/quotas/p1", {"limits": {"cores": 99}}),
                              ("DELETE", "/v1/quotas/p1", None),
                              ("PUT", "/v1/quotas/defaults", {"limits": {"cores": 1}}),
                              ("PUT", "/v1/quota-classes/x", {"limits": {"cores": 1}})):
        assert client.request(method, url, json=body).status_code == 403, url
