"""/v1/operations: submit, list with filters and pages, show per-site tasks, cancel, retry, and who may
see what (tenants their own project's operations, admins all)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from skyfleet.api.auth import Principal
from skyfleet.api.runtime import Runtime
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations.models import Task
from skyfleet.domains.sites.service import get_site
from tests.engine_support import PUBLIC_KEY
from tests.support import ADMIN, TENANT, site_body

OTHER = Principal(user_id="o", user_name="other", project_id="p2", project_name="p2", roles=("member",))


def add_sites(client: TestClient, *names: str) -> None:
    for name in names:
        assert client.post("/v1/sites?probe=false", json=site_body(name)).status_code == 201


def start(client: TestClient, **body: object) -> dict[str, object]:
    response = client.post("/v1/operations", json={"kind": "keypair.ensure",
                                                   "payload": {"name": "k", "public_key": PUBLIC_KEY}, **body})
    assert response.status_code == 202, response.text
    data: dict[str, object] = response.json()
    return data


def test_submit_records_one_task_per_site(client: TestClient, as_user: object) -> None:
    add_sites(client, "s1", "s2", "s3")
    op = start(client, sites=["s1", "s3"])
    assert op["state"] == "running" and op["total"] == 2 and op["counts"]["pending"] == 2  # type: ignore[index]
    detail = client.get(f"/v1/operations/{op['id']}").json()
    assert sorted(t["site_name"] for t in detail["tasks"]) == ["s1", "s3"]
    assert all(t["state"] == "pending" and t["attempts"] == 0 for t in detail["tasks"])
    everything = start(client)  # no sites, no selector: every managed site
    assert everything["total"] == 3


def test_bad_kind_and_payload_are_rejected(client: TestClient, as_user: object) -> None:
    add_sites(client, "s1")
    assert client.post("/v1/operations", json={"kind": "nope"}).status_code == 400
    bad = client.post("/v1/operations", json={"kind": "keypair.ensure", "payload": {"name": "k"}})
    assert bad.status_code == 400 and "public_key" in bad.json()["detail"]
    assert client.post("/v1/operations", json={"kind": "site.probe", "sites": ["ghost"]}).status_code == 404


def test_list_filters_and_pages(client: TestClient, as_user: object) -> None:
    add_sites(client, "s1")
    ids = [start(client)["id"] for _ in range(3)]
    probe = client.post("/v1/operations", json={"kind": "site.probe"}).json()["id"]
    page = client.get("/v1/operations?limit=2").json()
    assert [o["id"] for o in page["operations"]] == [probe, ids[2]]
    rest = client.get(f"/v1/operations?limit=2&marker={page['next_marker']}").json()
    assert [o["id"] for o in rest["operations"]] == [ids[1], ids[0]] and rest["next_marker"] is None
    kinds = client.get("/v1/operations?kind=site.probe").json()["operations"]
    assert [o["id"] for o in kinds] == [probe]
    assert client.get("/v1/operations?state=running").json()["operations"][0]["counts"]["pending"] == 1
    assert client.get("/v1/operations?state=bogus").status_code == 400


def test_tenants_see_only_their_project(client: TestClient, as_user: object, runtime: Runtime) -> None:
    add_sites(client, "s1")
    as_user(TENANT)  # type: ignore[operator]
    assert client.post("/v1/operations", json={"kind": "site.probe"}).status_code == 403
    as_user(ADMIN)  # type: ignore[operator]
    admin_op = start(client)["id"]
    with transaction(runtime.factory) as session:  # a feature started this one for tenant p1
        site = get_site(session, "s1")
        tenant_op = operations.submit(session, kind="keypair.ensure", targets=[operations.SiteRef(site.id, "s1")],
                                      payload={}, user_id="t", project_id="p1", now=utcnow()).id
    as_user(TENANT)  # type: ignore[operator]
    assert [o["id"] for o in client.get("/v1/operations").json()["operations"]] == [tenant_op]
    assert client.get(f"/v1/operations/{admin_op}").status_code == 404
    assert client.get(f"/v1/operations/{tenant_op}").status_code == 200
    as_user(OTHER)  # type: ignore[operator]
    assert client.get("/v1/operations").json()["operations"] == []
    assert client.post(f"/v1/operations/{tenant_op}/cancel").status_code == 404
    as_user(ADMIN)  # type: ignore[operator]
    assert len(client.get("/v1/operations").json()["operations"]) == 2


def test_cancel_then_retry_only_failed(client: TestClient, as_user: object, runtime: Runtime) -> None:
    add_sites(client, "s1", "s2")
    op = start(client)["id"]
    with transaction(runtime.factory) as session:  # s1 failed for good, s2 still pending
        task = session.query(Task).filter(Task.operation_id == op, Task.site_name == "s1").one()
        task.state, task.last_error, task.attempts = "failed", "HTTP 400: bad", 1
    cancelled = client.post(f"/v1/operations/{op}/cancel").json()
    assert cancelled["state"] == "failed" and cancelled["counts"]["cancelled"] == 1
    retried = client.post(f"/v1/operations/{op}/retry")
    assert retried.status_code == 202 and retried.json()["state"] == "running"
    tasks = {t["site_name"]: t for t in client.get(f"/v1/operations/{op}").json()["tasks"]}
    assert tasks["s1"]["state"] == "pending" and tasks["s1"]["attempts"] == 0
    assert tasks["s2"]["state"] == "cancelled"
    client.post(f"/v1/operations/{op}/cancel")
    assert client.post(f"/v1/operations/{op}/retry").status_code == 409
    assert client.post("/v1/operations/nope/cancel").status_code == 404
