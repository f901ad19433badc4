"""Names of users and projects are looked up on sites in the domain the home Keystone's token gives,
else in ``home_domain_name`` (not a hard-coded "Default")."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from skyfleet.api.app import create_app
from skyfleet.api.auth import Principal, TokenValidator
from skyfleet.api.runtime import Runtime
from skyfleet.config import Settings
from skyfleet.db.engine import transaction
from skyfleet.domains.operations.models import Task
from skyfleet.reconcile.kinds.sync_common import IdentityRef
from tests.engine_support import PUBLIC_KEY
from tests.support import FakeProber, site_body

ADMIN = Principal(user_id="u1", user_name="alice", project_id="p-admin", project_name="admin",
                  roles=("admin",), is_admin=True)
CAROL = Principal(user_id="u4", user_name="carol", project_id="p-lab", project_name="lab", roles=("member",),
                  project_domain_name="Research", user_domain_name="Staff")
DAVE = Principal(user_id="u5", user_name="dave", project_id="p-old", project_name="old", roles=("member",))


class Validator:
    tokens = {"admin": ADMIN, "carol": CAROL, "dave": DAVE}

    def validate(self, token: str) -> Principal:
        return self.tokens[token]


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime]) -> Iterator[tuple[TestClient, Runtime]]:
    rt = runtime_factory(None, FakeProber(), auth_mode="keystone", home_auth_url="http://home.example.test/v3",
                         home_username="svc", home_password="svc-pass-1234", home_domain_name="Corp")
    rt.validator = Validator()  # type: ignore[assignment]
    with TestClient(create_app(rt, start_workers=False)) as client:
        assert client.post("/v1/sites?probe=false", json=site_body("edge-1"),
                           headers={"X-Auth-Token": "admin"}).status_code == 201
        yield client, rt


def payload_of(rt: Runtime, operation_id: str) -> dict[str, Any]:
    with transaction(rt.factory) as session:
        task = session.scalars(select(Task).where(Task.operation_id == operation_id)).one()
        return dict(task.payload)


def declare(client: TestClient, token: str, path: str, name: str) -> str:
    spec: dict[str, Any] = {"name": name, "public_key": PUBLIC_KEY} if path == "keypairs" else {"name": name}
    response = client.post(f"/v1/{path}", json={"spec": spec}, headers={"X-Auth-Token": token})
    assert response.status_code == 202, response.text
    return str(response.json()["operation_id"])


def test_the_tokens_domains_go_into_the_site_payloads(api: tuple[TestClient, Runtime]) -> None:
    client, rt = api
    keypair = payload_of(rt, declare(client, "carol", "keypairs", "k"))
    group = payload_of(rt, declare(client, "carol", "security-groups", "g"))
    assert keypair["user"] == {"id": "u4", "name": "carol", "domain_name": "Staff"}
    assert group["project"] == {"id": "p-lab", "name": "lab", "domain_name": "Research"}
    assert IdentityRef.model_validate(keypair["user"]).domain_name == "Staff"


def test_without_domains_in_the_token_the_home_domain_setting_applies(api: tuple[TestClient, Runtime]) -> None:
    client, rt = api
    keypair = payload_of(rt, declare(client, "dave", "keypairs", "k"))
    group = payload_of(rt, declare(client, "dave", "security-groups", "g"))
    assert keypair["user"]["domain_name"] == "Corp" and group["project"]["domain_name"] == "Corp"


def test_a_new_global_quota_project_lives_in_the_home_domain(api: tuple[TestClient, Runtime]) -> None:
    client, _ = api
    body = client.put("/v1/quotas/p-old", json={"limits": {"cores": 8}}, headers={"X-Auth-Token": "admin"}).json()
    assert body["domain_name"] == "Corp"


class _Response:
    status_code = 200

    def json(self) -> dict[str, Any]:
        return {"token": {"roles": [{"name": "member"}],
                          "user": {"id": "u4", "name": "carol", "domain": {"id": "d1", "name": "Staff"}},
                          "project": {"id": "p-lab", "name": "lab", "domain": {"id": "d2", "name": "Research"}}}}


class _Session:
    def get(self, *_: Any, **__: Any) -> _Response:
        return _Response()


def test_token_validation_reads_the_user_and_project_domains(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, auth_mode="keystone", home_auth_url="http://home.example.test/v3",
                        home_username="svc", home_password="svc-pass-1234", token_cache_seconds=0)
    validator = TokenValidator(settings)
    validator._session = _Session()  # type: ignore[assignment]
    principal = validator.validate("token-value-1234")
    assert (principal.user_domain_name, principal.project_domain_name) == ("Staff", "Research")
