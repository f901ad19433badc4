"""Turn desired resources into engine work and fold the engine's results back into bindings.

``converge`` submits one operation per resource covering the sites whose binding has no open task:
ensure where the placement puts the resource, delete where a binding exists outside it (or
everywhere when the resource is being deleted). ``fold`` reads the finished tasks of bindings; the
engine runs it when a converge operation settles (its continuation), so bindings, ownership and
finished deletes are recorded with no reader. Both run inside the caller's transaction (a request,
a settling task, or one drift-audit pass); reads fold into a view they never commit.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, object_session

from skyfleet.db.base import table_of
from skyfleet.domains.events import service as events
from skyfleet.domains.identity import follow as identity
from skyfleet.domains.identity.service import domains_of
from skyfleet.domains.images import rollout
from skyfleet.domains.images import service as images
from skyfleet.domains.networks import service as networks
from skyfleet.domains.networks import vpn
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations import stages
from skyfleet.domains.operations.models import CANCELLED, FAILED, OPEN_STATES, SUCCEEDED, Operation, Task
from skyfleet.domains.projects import service as projects
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import DELETING, SyncBinding, SyncResource
from skyfleet.domains.sync.schemas import BindingOut, ResourceOut
from skyfleet.domains.sync.service import TASK_KIND, placed_sites, project_of

GONE = ("deleted", "absent", "kept")
FOLD = "sync.fold"
#: Called when an image's converge operation settled, with its folded bindings (boots waiting for a
#: copy register here); each returns True when it submitted work.
IMAGE_FOLDED: list[Callable[[Session, SyncResource, dict[str, SyncBinding], datetime], bool]] = []


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
        if task.state in OPEN_STATES:  # "failed" while a task past its max attempts keeps retrying
            result = task.result or {}
            binding.status = "failed" if result.get("failing") else "copying" if result.get("progress") \
                else "pending"
            binding.last_error = task.last_error
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
            networks.note_result(resource, site_id, result)
        binding.updated_at = max(now, task.finished_at or now)
    identity.after_fold(session, resource, bindings, now=now)
    if resource.kind == networks.KIND:  # a site whose copy is gone gives its prefix back
        placed = None if resource.state == DELETING else {s.id for s in placed_sites(session, resource.placement)}
        networks.after_fold(session, resource, bindings, placed)
    if resource.state == DELETING and not bindings:
        session.delete(resource)
    return bindings


def _drift_event(session: Session, resource: SyncResource, binding: SyncBinding, result: dict[str, Any],
                 now: datetime) -> None:
    """A site that was in sync needed a change: something drifted there and was repaired."""
    project = None if resource.scope.startswith("copy:") else project_of(resource)
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
        if isinstance(result.get("memberships"), dict):  # a user's memberships, and who made each
            binding.memberships = dict(result["memberships"])
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
    if resource.kind == "image":
        payload.update({k: int(options.get(k) or 0) for k in ("target_bps", "source_bps")})
        payload.update(keep_previous=bool(options.get("keep_previous")),
                       retire_action=str(options.get("retire_action") or "delete"))
    if resource.kind == "user" and options.get("password_box"):
        payload["password_box"] = options["password_box"]  # sealed; opened only by the kind
    if resource.kind == vpn.KIND and options.get("psk_box"):
        payload["psk_box"] = options["psk_box"]  # sealed; opened only by the kind
        payload["psk_version"] = vpn.key_version(resource)
    if resource.kind == "user" and options.get("leave_groups"):
        payload["leave_groups"] = list(options["leave_groups"])
    if resource.kind == "user" and options.get("admin_role"):
        payload["admin_roles"] = [str(options["admin_role"])]  # the fleet admin role, a site's admin too
    if resource.kind in ("project", "user", "group", "role_assignment") and _domain_declared(resource):
        payload["domain_declared"] = True  # a missing domain is then waited for, not a failure
    if resource.kind == "role_assignment":  # its actor's and its target's domains, when Skyfleet declares them
        declared = sorted(d for d in domains_of(resource) if _declared(resource, d))
        if declared:
            payload["declared_domains"] = declared
    payload.update(owner_refs(resource.kind, owner, site_owner=options.get("owner") == "site"))
    return payload


def _domain_declared(resource: SyncResource) -> bool:
    """Whether Skyfleet itself declares the domain this identity object lives in."""
    return _declared(resource, resource.spec.get("domain"))


def _declared(resource: SyncResource, name: str | None) -> bool:
    """Whether Skyfleet itself declares the domain ``name``."""
    session = object_session(resource)
    if not name or name == "Default" or session is None:
        return False
    found = session.execute(select(SyncResource.id).where(SyncResource.kind == "domain", SyncResource.name == name,
                                                          SyncResource.state != DELETING)).first()
    return found is not None


def owner_refs(kind: str, owner: dict[str, Any], *, site_owner: bool = False) -> dict[str, Any]:
    """Whose user or project a task acts in on each site: the owner's mapped user (keypairs) or project
    (security groups); the site credential's own (``site_scope``) only for a fleet admin's resource that
    asks for it or names none (noauth). A tenant's resource always carries its own."""
    admin = bool(owner.get("is_admin")) or not owner.get("real_user", True)
    out: dict[str, Any] = {}
    if kind == "keypair" and not site_owner and owner.get("real_user"):
        out["user"] = {"id": owner.get("user_id"), "name": owner.get("user_name"),
                       **_domain(owner.get("user_domain_name"))}
    if kind in ("security_group", "image", "network", "vpn_mesh") and owner.get("project_id"):
        out["project"] = {"id": owner.get("project_id"), "name": owner.get("project_name"),
                          **_domain(owner.get("project_domain_name"))}
    acts_as = "user" if kind == "keypair" else "project"
    if kind in ("keypair", "security_group", "image", "network", "vpn_mesh") and admin and acts_as not in out:
        out["site_scope"] = True
    return out


def _domain(name: Any) -> dict[str, str]:
    return {"domain_name": str(name)} if name else {}


def converge(session: Session, resource: SyncResource, *, now: datetime, user_id: str | None = None,
             supersede: bool = False, only: set[str] | None = None, skip: Callable[[SyncBinding], bool] | None = None,
             ) -> Operation | None:
    """Submit the work that brings every site in line with ``resource``; None when there is none.

    ``supersede``: cancel open tasks first (the spec changed, so they carry a stale payload).
    ``only``: ensure on these site ids alone and remove nowhere (the drift audit's repair of what it
    found drifted). ``skip``: leave the placed sites whose binding it accepts alone (the periodic pass
    leaves to the drift audit the bindings it compares by listing).
    """
    if supersede:
        _lock_open_tasks(session, resource)
    bindings = fold(session, resource, now=now)
    if resource in session.deleted:
        return None
    if supersede:
        _cancel_open(session, bindings, now=now)
    open_ids = _open_tasks(session, bindings)
    wanted, hold = ([], set()) if resource.state == DELETING else _targets(session, resource)
    placed = {s.id: s for s in wanted}
    managed = _forget_gone_sites(session, resource, bindings)
    ensure = [s for s in placed.values() if not _busy(bindings.get(s.id), open_ids)]
    if only is not None:
        ensure = [s for s in ensure if s.id in only]
    if skip is not None:
        ensure = [s for s in ensure if (b := bindings.get(s.id)) is None or not skip(b)]
    if resource.kind == networks.KIND and ensure:  # each site's copy needs its prefix from the pool
        refused = networks.allocate(session, resource=resource, sites=ensure, now=now, strict=False)
        ensure = [s for s in ensure if s.id not in refused]
    remove = [] if only is not None else [
        b for sid, b in bindings.items()
        if sid not in placed and sid not in hold and sid in managed and not _busy(b, open_ids)]
    targets = [operations.SiteRef(s.id, s.name) for s in ensure] + \
        [operations.SiteRef(b.site_id, b.site_name) for b in remove]
    if not targets:
        return None
    payload = _payload(resource, "ensure")
    operation, task_of = operations.submit_tasks(
        session, kind=TASK_KIND[resource.kind], payloads=[(site, payload) for site in targets], summary=payload,
        user_id=user_id, project_id=project_of(resource), now=now, continuation=FOLD)
    _specialise(session, operation.id, resource, bindings, {b.site_id for b in remove})
    _carry_intents(session, {sid: b.task_id for sid, b in bindings.items() if b.task_id}, task_of)
    new = []
    for site in ensure:
        binding = bindings.get(site.id)
        if binding is None:
            new.append(_new_binding(resource, site, task_of[site.id], now))
            continue
        binding.task_id, binding.action, binding.status, binding.updated_at = task_of[site.id], "ensure", \
            "pending", now
    for binding in remove:
        binding.task_id, binding.action, binding.status, binding.updated_at = task_of[binding.site_id], \
            "delete", "pending", now
    if new:
        session.flush()  # a binding dropped above (its copy gone, say) leaves before its site's new one is written
        session.execute(insert(table_of(SyncBinding)), new)
    resource.operation_id, resource.updated_at = operation.id, now
    return operation


def _targets(session: Session, resource: SyncResource) -> tuple[list[Site], set[str]]:
    """The sites that should hold the resource (its placement; an image: narrowed by its sync mode), and
    the placed sites whose copies are left as they are (a controlled rollout has not reached them)."""
    placement = {"sites": vpn.placed_ids(session, resource)} if resource.kind == vpn.KIND else resource.placement
    placed = placed_sites(session, placement, light=True)
    return images.targets(resource, placed) if resource.kind == "image" else (placed, set())


def _lock_open_tasks(session: Session, resource: SyncResource) -> None:
    """Lock the resource's open tasks (in id order) before its bindings are written. A worker that
    finishes one of them locks the task first and then folds the bindings (the continuation); a
    request that folded the bindings first and then cancelled the tasks took the same two locks in
    the other order, and PostgreSQL answered one of them with a deadlock (a 503 to the caller)."""
    task_ids = select(SyncBinding.task_id).where(SyncBinding.resource_id == resource.id,
                                                 SyncBinding.task_id.is_not(None))
    session.execute(select(Task.id).where(Task.id.in_(task_ids), Task.state.in_(OPEN_STATES))
                    .order_by(Task.id).with_for_update()).all()


def _carry_intents(session: Session, previous: dict[str, str], task_of: dict[str, str]) -> None:
    """A site's new task inherits the create its unfinished predecessor recorded (it was cancelled,
    perhaps after a crash, or failed): what the new task finds there may be Skyfleet's own."""
    if not previous:
        return
    for task_id, intent in session.execute(select(Task.id, Task.intent).where(
            Task.id.in_(list(previous.values())), Task.state != SUCCEEDED)).all():
        site_id = next(sid for sid, tid in previous.items() if tid == task_id)
        if intent and (intent.get("create") or intent.get("join")) and site_id in task_of:
            session.execute(update(Task).where(Task.id == task_of[site_id]).values(intent=intent)
                            .execution_options(synchronize_session=False))


def _forget_gone_sites(session: Session, resource: SyncResource, bindings: dict[str, SyncBinding]) -> set[str]:
    """Drop the bindings of deregistered sites; the ids of the bound sites still managed (an unmanaged
    site's binding is left as it is: Skyfleet does not touch that site)."""
    if not bindings:
        return set()
    known = dict(session.execute(select(Site.id, Site.managed).where(Site.id.in_(list(bindings)))).all())
    for site_id in [sid for sid in bindings if sid not in known]:
        session.delete(bindings.pop(site_id))
    if resource.state == DELETING and not bindings:
        if resource.kind == networks.KIND:
            networks.release_reservations(session, resource)
        session.delete(resource)
    return {sid for sid, managed in known.items() if managed}


def _specialise(session: Session, operation_id: str, resource: SyncResource, bindings: dict[str, SyncBinding],
                removing: set[str]) -> None:
    """Per-site payloads: ``owned`` where Skyfleet created the copy, ``action=delete`` where it leaves,
    and the site's own project id where an admin recorded an explicit project mapping."""
    base = _payload(resource, "ensure")
    mapped = _explicit_projects(session, base)
    own = networks.site_fields(resource)  # a declared network: each site's prefix
    own.update(vpn.site_fields(session, resource))  # a VPN mesh: each site's prefixes and peers
    for sid, fields in identity.site_fields(resource, bindings).items():  # a user: its added groups
        own.setdefault(sid, {}).update(fields)
    site_ids = set(bindings) | {sid for _, sid in mapped} | set(own)
    groups: dict[str, tuple[dict[str, Any], list[str]]] = {}
    for sid in site_ids:
        binding = bindings.get(sid)
        payload = {**base, "action": "delete" if sid in removing else "ensure",
                   "owned": bool(binding and binding.owned), **own.get(sid, {})}
        payload = _map_projects(payload, {p: r for (p, s), r in mapped.items() if s == sid})
        if payload == {**base, "owned": False}:
            continue  # what submit already wrote
        key = json.dumps(payload, sort_keys=True)
        groups.setdefault(key, (payload, []))[1].append(sid)
    for payload, sites_ in groups.values():
        session.execute(update(Task).where(Task.operation_id == operation_id, Task.site_id.in_(sites_))
                        .values(payload=payload).execution_options(synchronize_session=False))


def _project_ids(payload: dict[str, Any]) -> list[str]:
    # (a role assignment names its project by a plain name: not a reference to map)
    refs = [payload.get("project") or {}, *(payload.get("access") or [])]
    return [str(ref["id"]) for ref in refs if isinstance(ref, dict) and ref.get("id")]


def _explicit_projects(session: Session, payload: dict[str, Any]) -> dict[tuple[str, str], str]:
    return projects.explicit_mappings(session, project_ids=_project_ids(payload))


def _map_projects(payload: dict[str, Any], remote: dict[str, str]) -> dict[str, Any]:
    """``payload`` with each global project id that has an explicit mapping on this site replaced."""
    if not remote:
        return payload
    out = dict(payload)
    if isinstance(out.get("project"), dict) and out["project"].get("id") in remote:
        out["project"] = {"id": remote[out["project"]["id"]], "name": None}
    if out.get("access"):
        out["access"] = [{"id": remote[a["id"]], "name": None} if a.get("id") in remote else a
                         for a in out["access"]]
    return out


def _new_binding(resource: SyncResource, site: Site, task_id: str, now: datetime) -> dict[str, Any]:
    """The row of a site's first binding, pending on its task; written with the others in one executemany
    (a declaration on thousands of sites makes no ORM object per site)."""
    return {"resource_id": resource.id, "site_id": site.id, "site_name": site.name, "task_id": task_id,
            "action": "ensure", "remote_id": None, "owned": False, "status": "pending", "last_error": None,
            "generation": 0, "updated_at": now}


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
    progress = _progress(session, bindings)
    out = []
    for b in sorted(bindings.values(), key=lambda b: b.site_name):
        status = "unknown" if availability.get(b.site_id, "offline") == "offline" else b.status
        out.append(BindingOut(site_id=b.site_id, site_name=b.site_name, status=status, action=b.action,
                              remote_id=b.remote_id, owned=b.owned, error=b.last_error, task_id=b.task_id,
                              updated_at=b.updated_at, progress=progress.get(b.task_id or ""),
                              memberships=b.memberships if resource.kind == "user" else None))
    counts: dict[str, int] = {}
    for binding in out:
        counts[binding.status] = counts.get(binding.status, 0) + 1
    return ResourceOut(id=resource.id, kind=resource.kind, name=resource.name, project_id=project_of(resource),
                       spec=_public_spec(resource), placement=resource.placement, options=_public_options(resource),
                       state=resource.state, generation=resource.generation, operation_id=resource.operation_id,
                       counts=counts, bindings=out, created_at=resource.created_at, updated_at=resource.updated_at)


def _progress(session: Session, bindings: dict[str, SyncBinding]) -> dict[str, dict[str, Any]]:
    """The reported progress of the copies under way, by task id."""
    task_ids = [b.task_id for b in bindings.values() if b.status == "copying" and b.task_id]
    if not task_ids:
        return {}
    rows = session.execute(select(Task.id, Task.result).where(Task.id.in_(task_ids))).all()
    return {tid: result["progress"] for tid, result in rows if isinstance(result, dict) and result.get("progress")}


def _public_spec(resource: SyncResource) -> dict[str, Any]:
    return dict(resource.spec)


def _public_options(resource: SyncResource) -> dict[str, Any]:
    """Options without sealed secrets (a user's password is write-only; only whether one is set shows)
    and without the fleet admin role's name the user task is given (a domain admin reads these)."""
    out = {k: v for k, v in resource.options.items() if k not in ("password_box", "psk_box", "admin_role")}
    if resource.kind == "user":
        out["password_set"] = bool(resource.options.get("password_box"))
    return out


def _fold_settled(session: Session, operation: Operation, _final: str, now: datetime) -> bool:
    """The continuation of a converge operation: record its outcomes in the resource's bindings."""
    resource = session.get(SyncResource, (operation.payload or {}).get("resource_id"))
    if resource is None:
        return False
    bindings = fold(session, resource, now=now)
    if resource.kind != "image" or resource in session.deleted:
        return False  # nothing new to run
    spawned = [hook(session, resource, bindings, now) for hook in IMAGE_FOLDED]
    if rollout.judge(session, resource, bindings, now=now):
        # the next wave (or the retiring of old copies), in the lane of whoever started the wave just done
        return converge(session, resource, now=now, user_id=operation.user_id) is not None or any(spawned)
    return any(spawned)


stages.register(FOLD, _fold_settled)
