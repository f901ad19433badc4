"""Turn desired resources into engine work and fold the engine's results back into bindings.

``converge`` submits one operation per resource covering the sites whose binding has no open task:
ensure where the placement puts the resource, delete where a binding exists outside it (or
everywhere when the resource is being deleted). ``fold`` reads the finished tasks of bindings.
Both run inside the caller's transaction (a request, or one drift-audit pass).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from skyfleet.domains.events import service as events
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations.models import CANCELLED, FAILED, OPEN_STATES, SUCCEEDED, Operation, Task
from skyfleet.domains.projects import service as projects
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import DELETING, SyncBinding, SyncResource
from skyfleet.domains.sync.schemas import BindingOut, ResourceOut
from skyfleet.domains.sync.service import TASK_KIND, placed_sites

GONE = ("deleted", "absent", "kept")


def bindings_of(session: Session, resource: SyncResource) -> dict[str, SyncBinding]:
    return {b.site_id: b for b in session.scalars(
        select(SyncBinding).where(SyncBinding.resource_id == resource.id))}


def fold(session: Session, resource: SyncResource, *, now: datetime) -> dict[str, SyncBinding]:
    """Copy finished task outcomes into the bindings; drop bindings whose copy is gone."""
    bindings = bindings_of(session, resource)
    task_ids = [b.task_id for b in bindings.values() if b.task_id]
    tasks = {t.id: t for t in session.scalars(select(Task).where(Task.id.in_(task_ids)))} if task_ids else {}
    for site_id, binding in list(bindings.items()):
        task = tasks.get(binding.task_id or "")
        if task is None:
            continue
        if task.state in OPEN_STATES:
            binding.status, binding.last_error = "pending", task.last_error
            continue
        if task.finished_at is not None and binding.updated_at >= task.finished_at:
            continue  # this outcome was folded already
        result = task.result or {}
        if task.state == SUCCEEDED and result.get("status") in GONE and binding.action == "delete":
            session.delete(binding)
            del bindings[site_id]
            continue
        generation = int((task.payload or {}).get("generation") or 0)
        if task.state == SUCCEEDED and result.get("changed") and binding.action == "ensure" \
                and generation == binding.generation:
            _drift_event(session, resource, binding, result, now)  # this spec was applied before: it drifted
        _fold_one(binding, task, result)
        if task.state == SUCCEEDED:
            binding.generation = generation
        binding.updated_at = max(now, task.finished_at or now)
    if resource.state == DELETING and not bindings:
        session.delete(resource)
    return bindings


def _drift_event(session: Session, resource: SyncResource, binding: SyncBinding, result: dict[str, Any],
                 now: datetime) -> None:
    """A site that was in sync needed a change: something drifted there and was repaired."""
    project = None if resource.scope.startswith("copy:") else resource.scope or None
    events.record(session, kind="sync.drift_repaired", severity="warning", site_id=binding.site_id,
                  site_name=binding.site_name, project_id=project,
                  at=now, message=f"{resource.kind} {resource.name!r} drifted in {binding.site_name} and was "
                  f"repaired ({result.get('detail') or 'recreated'})",
                  details={"resource_id": resource.id, "kind": resource.kind, "action": binding.action})


def _fold_one(binding: SyncBinding, task: Task, result: dict[str, Any]) -> None:
    if task.state == SUCCEEDED:
        binding.status = str(result.get("status") or "in-sync")
        binding.remote_id = result.get("remote_id") or binding.remote_id
        binding.owned = binding.owned or bool(result.get("created"))
        binding.last_error = result.get("detail") or None if binding.status == "out-of-sync" else None
    elif task.state in (FAILED, CANCELLED):
        binding.status = "failed"
        binding.last_error = task.last_error or task.state


def _payload(resource: SyncResource, action: str) -> dict[str, Any]:
    spec, owner, options = dict(resource.spec), resource.owner, resource.options
    payload: dict[str, Any] = {**spec, "action": action, "resource_id": resource.id,
                               "force": bool(options.get("force")), "purge": bool(options.get("purge")),
                               "generation": resource.generation}
    if resource.kind == "flavor":
        payload["replace"] = bool(options.get("replace"))
    if resource.kind == "keypair" and options.get("owner", "caller") == "caller" and owner.get("real_user"):
        payload["user"] = {"id": owner.get("user_id"), "name": owner.get("user_name")}
    if resource.kind == "security_group" and owner.get("project_id"):
        payload["project"] = {"id": owner.get("project_id"), "name": owner.get("project_name")}
    return payload


def converge(session: Session, resource: SyncResource, *, now: datetime, user_id: str | None = None,
             supersede: bool = False) -> Operation | None:
    """Submit the work that brings every site in line with ``resource``; None when there is none.

    ``supersede``: cancel open tasks first (the spec changed, so they carry a stale payload).
    """
    bindings = fold(session, resource, now=now)
    if resource in session.deleted:
        return None
    if supersede:
        _cancel_open(session, bindings, now=now)
    open_ids = _open_tasks(session, bindings)
    placed = {} if resource.state == DELETING else {s.id: s for s in placed_sites(session, resource.placement)}
    managed = _forget_gone_sites(session, resource, bindings)
    ensure = [s for s in placed.values() if not _busy(bindings.get(s.id), open_ids)]
    remove = [b for sid, b in bindings.items()
              if sid not in placed and sid in managed and not _busy(b, open_ids)]
    targets = [operations.SiteRef(s.id, s.name) for s in ensure] + \
        [operations.SiteRef(b.site_id, b.site_name) for b in remove]
    if not targets:
        return None
    operation = operations.submit(session, kind=TASK_KIND[resource.kind], targets=targets,
                                  payload=_payload(resource, "ensure"), user_id=user_id,
                                  project_id=resource.scope or None, now=now)
    _specialise(session, operation.id, resource, bindings, {b.site_id for b in remove})
    task_of = dict(session.execute(select(Task.site_id, Task.id).where(Task.operation_id == operation.id)).all())
    for site in ensure:
        binding = bindings.get(site.id) or _new_binding(session, resource, site, now)
        binding.task_id, binding.action, binding.status, binding.updated_at = task_of[site.id], "ensure", \
            "pending", now
    for binding in remove:
        binding.task_id, binding.action, binding.status, binding.updated_at = task_of[binding.site_id], \
            "delete", "pending", now
    resource.operation_id, resource.updated_at = operation.id, now
    return operation


def _forget_gone_sites(session: Session, resource: SyncResource, bindings: dict[str, SyncBinding]) -> set[str]:
    """Drop the bindings of deregistered sites; the ids of the bound sites still managed (an unmanaged
    site's binding is left as it is: Skyfleet does not touch that site)."""
    if not bindings:
        return set()
    known = dict(session.execute(select(Site.id, Site.managed).where(Site.id.in_(list(bindings)))).all())
    for site_id in [sid for sid in bindings if sid not in known]:
        session.delete(bindings.pop(site_id))
    if resource.state == DELETING and not bindings:
        session.delete(resource)
    return {sid for sid, managed in known.items() if managed}


def _specialise(session: Session, operation_id: str, resource: SyncResource, bindings: dict[str, SyncBinding],
                removing: set[str]) -> None:
    """Per-site payloads: ``owned`` where Skyfleet created the copy, ``action=delete`` where it leaves,
    and the site's own project id where an admin recorded an explicit project mapping."""
    base = _payload(resource, "ensure")
    mapped = _explicit_projects(session, base)
    site_ids = set(bindings) | {sid for _, sid in mapped}
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for sid in site_ids:
        binding = bindings.get(sid)
        payload = {**base, "action": "delete" if sid in removing else "ensure",
                   "owned": bool(binding and binding.owned)}
        payload = _map_projects(payload, {p: r for (p, s), r in mapped.items() if s == sid})
        if payload == {**base, "owned": False}:
            continue  # what submit already wrote
        key = json.dumps(payload, sort_keys=True)
        groups.setdefault(key, (payload, []))[1].append(sid)
    for payload, sites_ in groups.values():
        session.execute(update(Task).where(Task.operation_id == operation_id, Task.site_id.in_(sites_))
                        .values(payload=payload).execution_options(synchronize_session=False))


def _project_ids(payload: dict[str, Any]) -> list[str]:
    refs = [payload.get("project") or {}, *(payload.get("access") or [])]
    return [str(ref["id"]) for ref in refs if ref.get("id")]


def _explicit_projects(session: Session, payload: dict[str, Any]) -> dict[tuple[str, str], str]:
    return projects.explicit_mappings(session, project_ids=_project_ids(payload))


def _map_projects(payload: dict[str, Any], remote: dict[str, str]) -> dict[str, Any]:
    """``payload`` with each global project id that has an explicit mapping on this site replaced."""
    if not remote:
        return payload
    out = dict(payload)
    if out.get("project") and out["project"].get("id") in remote:
        out["project"] = {"id": remote[out["project"]["id"]], "name": None}
    if out.get("access"):
        out["access"] = [{"id": remote[a["id"]], "name": None} if a.get("id") in remote else a
                         for a in out["access"]]
    return out


def _new_binding(session: Session, resource: SyncResource, site: Site, now: datetime) -> SyncBinding:
    binding = SyncBinding(resource_id=resource.id, site_id=site.id, site_name=site.name, owned=False,
                          status="pending", action="ensure", generation=0, updated_at=now)
    session.add(binding)
    return binding


def _open_tasks(session: Session, bindings: dict[str, SyncBinding]) -> set[str]:
    ids = [b.task_id for b in bindings.values() if b.task_id]
    if not ids:
        return set()
    return set(session.scalars(select(Task.id).where(Task.id.in_(ids), Task.state.in_(OPEN_STATES))))


def _busy(binding: SyncBinding | None, open_ids: set[str]) -> bool:
    return binding is not None and binding.task_id in open_ids


def _cancel_open(session: Session, bindings: dict[str, SyncBinding], *, now: datetime) -> None:
    open_ids = _open_tasks(session, bindings)
    if not open_ids:
        return
    op_ids = set(session.scalars(select(Task.operation_id).where(Task.id.in_(open_ids))))
    session.execute(update(Task).where(Task.id.in_(open_ids), Task.state.in_(OPEN_STATES))
                    .values(state=CANCELLED, lease_owner=None, lease_expires_at=None, updated_at=now,
                            finished_at=now).execution_options(synchronize_session=False))
    for op in session.scalars(select(Operation).where(Operation.id.in_(op_ids)).with_for_update()):
        operations.finish_if_done(session, operation=op, now=now)


def render(session: Session, resource: SyncResource, bindings: dict[str, SyncBinding]) -> ResourceOut:
    """The resource with each site's binding; a binding of an offline site reads ``unknown``."""
    availability = dict(session.execute(select(Site.id, Site.availability).where(
        Site.id.in_(list(bindings)))).all()) if bindings else {}
    out = []
    for b in sorted(bindings.values(), key=lambda b: b.site_name):
        status = "unknown" if availability.get(b.site_id, "offline") == "offline" else b.status
        out.append(BindingOut(site_id=b.site_id, site_name=b.site_name, status=status, action=b.action,
                              remote_id=b.remote_id, owned=b.owned, error=b.last_error, task_id=b.task_id,
                              updated_at=b.updated_at))
    counts: dict[str, int] = {}
    for binding in out:
        counts[binding.status] = counts.get(binding.status, 0) + 1
    return ResourceOut(id=resource.id, kind=resource.kind, name=resource.name, project_id=resource.scope or None,
                       spec=_public_spec(resource), placement=resource.placement, options=resource.options,
                       state=resource.state, generation=resource.generation, operation_id=resource.operation_id,
                       counts=counts, bindings=out, created_at=resource.created_at, updated_at=resource.updated_at)


def _public_spec(resource: SyncResource) -> dict[str, Any]:
    return dict(resource.spec)
