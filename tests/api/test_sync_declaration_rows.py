"""What a declaration on hundreds of sites writes, row by row, on SQLite and PostgreSQL.

A declaration writes its bindings and the operation's tasks as executemany of plain rows (not ORM
objects, for speed on thousands of sites). These tests pin what those rows hold, so the bulk path
cannot quietly stop writing something: one binding per placed managed site, each pending on its
own task of the resource's operation on the same site, the tasks pending with the declaration's
payload, the operation in the caller's lane (user-started) and continued by the fold, and no event.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from skyfleet.api.runtime import Runtime
from skyfleet.db.engine import transaction
from skyfleet.domains.events.models import Event
from skyfleet.domains.operations.models import Operation, Task
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sites.schemas import SiteCreate
from skyfleet.domains.sync.models import SyncBinding, SyncResource
from tests.engine_support import PUBLIC_KEY
from tests.support import site_body

SITES = 300
UNMANAGED = "site-007"


@pytest.fixture
def fleet(runtime: Runtime) -> dict[str, str]:
    """300 registered sites (site-007 unmanaged: never placed), their ids by name."""
    with transaction(runtime.factory) as session:
        for i in range(SITES):
            name = f"site-{i:03d}"
            sites.create_site(session, box=runtime.box, data=SiteCreate.model_validate(
                {**site_body(name), "managed": name != UNMANAGED, "labels": {"ring": str(i % 3)}}))
    with transaction(runtime.factory) as session:
        return {name: site_id for name, site_id in session.execute(select(Site.name, Site.id))}


def events(runtime: Runtime) -> int:
    with transaction(runtime.factory) as session:
        return int(session.scalar(select(func.count()).select_from(Event)) or 0)


def written(runtime: Runtime, name: str) -> tuple[SyncResource, Operation, list[Task], list[SyncBinding]]:
    with transaction(runtime.factory) as session:
        resource = session.scalars(select(SyncResource).where(SyncResource.name == name)).one()
        operation = session.get(Operation, resource.operation_id)
        assert operation is not None
        tasks = list(session.scalars(select(Task).where(Task.operation_id == operation.id)))
        bindings = list(session.scalars(select(SyncBinding).where(SyncBinding.resource_id == resource.id)))
        return resource, operation, tasks, bindings


def check_rows(runtime: Runtime, name: str, placed: dict[str, str]) -> None:
    """The rows of a fresh declaration of keypair ``name`` placed on exactly ``placed`` (name -> id)."""
    resource, operation, tasks, bindings = written(runtime, name)
    now = resource.created_at
    assert resource.updated_at == now and resource.generation == 1 and resource.state == "active"
    assert (operation.kind, operation.state, operation.total, operation.continuation) \
        == ("sync.keypair", "running", len(placed), "sync.fold")
    assert operation.user_id == "noauth"  # started by a user: the user lane, never the background one
    assert operation.project_id is None and operation.finished_at is None and operation.created_at == now
    payload = {"name": name, "public_key": PUBLIC_KEY, "action": "ensure", "resource_id": resource.id,
               "force": False, "purge": False, "generation": 1, "site_scope": True}
    assert operation.payload == payload
    assert len(tasks) == len(placed) == len({t.id for t in tasks})
    assert {(t.site_id, t.site_name) for t in tasks} == {(sid, n) for n, sid in placed.items()}
    for task in tasks:
        assert (task.kind, task.state, task.attempts, task.payload) == ("sync.keypair", "pending", 0, payload)
        assert task.next_attempt_at == task.created_at == task.updated_at == now
        assert (task.lease_owner, task.lease_expires_at, task.last_error, task.result, task.intent,
                task.finished_at) == (None, None, None, None, None, None)
    task_of = {t.site_id: t for t in tasks}
    assert len(bindings) == len(placed)
    for binding in bindings:
        task = task_of[binding.site_id]  # each binding points at its own site's task of this operation
        assert (binding.task_id, binding.site_name) == (task.id, task.site_name)
        assert (binding.action, binding.status, binding.owned, binding.generation, binding.remote_id,
                binding.last_error, binding.updated_at) == ("ensure", "pending", False, 0, None, None, now)


def test_a_declaration_on_every_site_writes_one_binding_and_one_task_per_managed_site(
        client: TestClient, runtime: Runtime, fleet: dict[str, str]) -> None:
    before = events(runtime)
    made = client.post("/v1/keypairs", json={"spec": {"name": "everywhere", "public_key": PUBLIC_KEY}})
    assert made.status_code == 202, made.text
    body: dict[str, Any] = made.json()
    placed = {n: sid for n, sid in fleet.items() if n != UNMANAGED}
    assert body["counts"] == {"pending": SITES - 1} and len(body["bindings"]) == SITES - 1
    assert [b["site_name"] for b in body["bindings"]] == sorted(placed)
    check_rows(runtime, "everywhere", placed)
    assert body["operation_id"] == written(runtime, "everywhere")[1].id
    assert events(runtime) == before  # a declaration records no event


def test_named_sites_are_resolved_at_once_by_name_or_id_and_an_unknown_one_writes_nothing(
        client: TestClient, runtime: Runtime, fleet: dict[str, str]) -> None:
    chosen = [f"site-{i:03d}" for i in range(SITES - 1, -1, -2)]  # odd ones, backwards
    refs = [fleet[n] if i % 5 == 0 else n for i, n in enumerate(chosen)]  # some by id
    refs += [chosen[0], fleet[chosen[1]], UNMANAGED]  # repeats, and an unmanaged site: skipped
    before = events(runtime)
    refused = client.post("/v1/keypairs", json={"spec": {"name": "named", "public_key": PUBLIC_KEY},
                                                "placement": {"sites": [*refs[:10], "nowhere", "atlantis"]}})
    assert refused.status_code == 400 and refused.json()["detail"] == "placement.sites: no site 'nowhere'"
    with transaction(runtime.factory) as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 0
        assert session.scalar(select(func.count()).select_from(SyncResource)) == 0
    made = client.post("/v1/keypairs", json={"spec": {"name": "named", "public_key": PUBLIC_KEY},
                                             "placement": {"sites": refs}})
    assert made.status_code == 202, made.text
    check_rows(runtime, "named", {n: fleet[n] for n in chosen if n != UNMANAGED})
    assert events(runtime) == before
