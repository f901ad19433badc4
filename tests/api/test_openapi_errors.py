"""The OpenAPI document shows the error body Skyfleet really sends, and every status a route can answer."""

from __future__ import annotations

from fastapi.testclient import TestClient

AUTHENTICATED = {"400", "401", "403", "404", "409", "413", "421", "422", "429", "503"}
ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}


def test_every_error_response_uses_the_error_body(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert "HTTPValidationError" not in schemas and "ValidationError" not in schemas
    assert schemas["ErrorBody"]["required"] == ["code", "title", "detail"]
    assert schemas["ErrorBody"]["properties"]["detail"]["type"] == "string"
    checked = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            errors = {code for code in responses if code.startswith(("4", "5"))}
            if path.startswith("/v1"):
                assert errors >= AUTHENTICATED, (method, path, errors)
            for code in errors:
                assert responses[code]["content"]["application/json"]["schema"] == ERROR_REF, (method, path, code)
                checked += 1
    assert checked > 200
    assert {"413", "503"} <= set(spec["paths"]["/healthz"]["get"]["responses"])
    assert "406" in spec["paths"]["/v1.0/{project_id}/os-sync/{job_id}"]["delete"]["responses"]


def test_a_422_matches_the_documented_body(client: TestClient) -> None:
    response = client.post("/v1/sites", json={"name": 5})
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"code", "title", "detail", "request_id"} and isinstance(body["detail"], str)
    assert body["request_id"] == response.headers["x-request-id"]  # the id a user quotes is the header's
