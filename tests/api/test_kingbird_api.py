"""Kingbird v1.0 rules Skyfleet follows, checked without Kingbird's own tests (those run in
tests/kingbird_compat, which fetch Kingbird): the URL's project, answer shapes, per-resource delete,
limit validation, the resource set, classes, and os-sync's status codes."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from fastapi.testclient import TestClient

from skyfleet.api.auth import Principal

ME = uuid.uuid4().hex  # Kingbird's URLs name a project by its id
ADMIN = Principal(user_id="a", user_name="admin", project_id=ME, project_name="admin", roles=("admin",),
                  is_admin=True)
MEMBER = Principal(user_id="m", user_name="mia", project_id=ME, project_name="admin", roles=("member",))
P = uuid.uuid4().hex


def test_quota_shapes_and_validation(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    as_user(ADMIN)
    base = f"/v1.0/{ME}/os-quota-sets"
    assert client.put(f"{base}/{P}", json={"quota_set": {"cores": 10, "floating_ips": 3}}).json() == \
        {P: {"cores": 10, "floating_ips": 3}}
    shown = client.get(f"{base}/{P}").json()["quota_set"]
    assert (shown["cores"], shown["floating_ips"], shown["fixed_ips"]) == (10, 3, -1)
    assert "server_groups" not in shown and len(shown) == 20
    for bad in ({"cores": "10"}, {"cores": 1.5}, {"cores": True}, {"cores": -2}, {"server_groups": 1}, {}):
        assert client.put(f"{base}/{P}", json={"quota_set": bad}).status_code == 400, bad
    assert client.put(f"{base}/{P}", json={"quota_set": {"cores": 0, "ram": -1}}).status_code == 200
    assert client.request("DELETE", f"{base}/{P}", json={"quota_set": ["nope"]}).status_code == 400
    assert client.request("DELETE", f"{base}/{P}", json={"quota_set": ["gigabytes"]}).status_code == 404
    assert client.request("DELETE", f"{base}/{P}", json={"quota_set": ["cores"]}).json() == \
        {"Deleted quota limits": ["cores"]}
    left = client.get(f"{base}/{P}").json()["quota_set"]
    assert (left["cores"], left["ram"]) == (20, -1)  # only cores went back to the default
    assert client.delete(f"{base}/{P}").json() == "Deleted all quota limits for the given project"
    assert client.delete(f"{base}/{P}").status_code == 404
    assert client.get(f"/v1.0/dummy/os-quota-sets/{P}").status_code == 400  # not a project id
    assert client.get(f"/v1.0/{uuid.uuid4().hex}/os-quota-sets/{P}").status_code == 200  # admins: any project id
    as_user(MEMBER)
    assert client.put(f"/v1.0/dummy/os-quota-sets/{P}", json={"quota_set": {"cores": 1}}).status_code == 403
    assert client.delete(f"/v1.0/dummy/os-quota-sets/{P}").status_code == 400  # the URL first, as Kingbird


def test_quota_classes(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    as_user(ADMIN)
    url = f"/v1.0/{ME}/os-quota-class-sets"
    made = client.put(f"{url}/gold", json={"quota_class_set": {"cores": 64}}).json()["quota_class_set"]
    assert (made["class_name"], made["cores"], made["instances"]) == ("gold", 64, 10)
    unknown = client.get(f"{url}/nothing").json()["quota_class_set"]
    assert (unknown["class_name"], unknown["cores"]) == ("nothing", 20)  # the defaults, 200
    assert client.delete(f"{url}/gold").status_code == 200
    assert client.delete(f"{url}/gold").status_code == 404


def test_os_sync_status_codes(client: TestClient, as_user: Callable[[Principal], None]) -> None:
    as_user(ADMIN)
    url = f"/v1.0/{ME}/os-sync"
    assert client.post(url).status_code == 400  # no body
    assert client.post(url, json={"resources": ["k"]}).status_code == 400  # no resource_set
    assert client.get(f"{url}/not-a-uuid").status_code == 400
    assert client.delete(f"{url}/not-a-uuid").status_code == 400
    assert client.get(f"{url}/{uuid.uuid4()}").status_code == 404
    assert client.get(f"/v1.0/{uuid.uuid4().hex}/os-sync").status_code == 400  # admins too: their own project
    assert client.get(url).json() == {"job_set": []}
    as_user(MEMBER)
    flavor = {"resource_set": {"resource_type": "flavor", "resources": ["f"], "source": "a", "target": [["b"]]}}
    assert client.post(url, json=flavor).status_code == 403  # before the rest of the body is looked at


def test_root_has_kingbird_versions(client: TestClient) -> None:
    versions = client.get("/").json()["versions"]
    assert versions[0]["id"] == "v1.0" and versions[0]["links"][0]["href"].endswith("/v1.0/")
    assert client.post("/").status_code == 405
