"""/v1/operations: follow, cancel and retry the work fanned out to sites.

Tenants see, cancel and retry their own project's operations; admins see all of them, and may start
any registered task kind on a set of sites (features start their own operations through their
services, in the transaction that records their intent).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from skyfleet.api import access
from skyfleet.api.deps import PrincipalDep, RuntimeDep
from skyfleet.api.params import CLEAN_URL, csv
from skyfleet.db.base import utcnow
from skyfleet.db.engine import transaction
from skyfleet.domains.operations import service as operations
from skyfleet.domains.operations.models import OPERATION_STATES
from skyfleet.domains.operations.schemas import (
    OperationCreate,
    OperationDetail,
    OperationList,
    OperationOut,
    TaskCounts,
)
from skyfleet.domains.selectors import parse_selector
from skyfleet.domains.sites import service as sites
from skyfleet.domains.sites.models import Site
from skyfleet.errors import Invalid
from skyfleet.reconcile.kinds import validate_payload

router = APIRouter(prefix="/v1/operations", tags=["operations"], dependencies=CLEAN_URL)


@router.get("", response_model=OperationList)
def list_operations(
    runtime: RuntimeDep, principal: PrincipalDep,
    kind: Annotated[str | None, Query(description="Comma-separated kinds, e.g. keypair.ensure")] = None,
    state: Annotated[str | None, Query(description="Comma-separated: running, succeeded, failed, cancelled")]
    = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    marker: Annotated[str | None, Query(description="Id of the last operation of the previous page")] = None,
) -> OperationList:
    states = csv(state, "state")
    if set(states) - set(OPERATION_STATES):
        raise Invalid(f"unknown state {sorted(set(states) - set(OPERATION_STATES))}; use {list(OPERATION_STATES)}")
    filters = operations.OperationFilter(
        kinds=csv(kind, "kind"), states=states,
        project_id=access.row_scope(principal))
    with transaction(runtime.factory) as session:
        rows, next_marker = operations.list_operations(session, filters=filters, limit=limit, marker=marker)
        counts = operations.task_counts(session, [r.id for r in rows])
        return OperationList(operations=[operations.to_out(r, counts[r.id]) for r in rows],
                             next_marker=next_marker)


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=OperationOut)
def create_operation(body: OperationCreate, runtime: RuntimeDep, principal: PrincipalDep) -> OperationOut:
    """Run a task kind on sites (admins). Answers 202 at once; follow the operation by its id."""
    payload = validate_payload(body.kind, body.payload)
    with transaction(runtime.factory) as session:
        if body.sites is not None:
            targets = [sites.get_site(session, ref) for ref in dict.fromkeys(body.sites)]
            refs = [operations.SiteRef(s.id, s.name) for s in targets]
        else:
            query = sites.site_query(sites.SiteFilter(selector=parse_selector(body.selector or ""), managed=True))
            refs = [operations.SiteRef(s.id, s.name) for s in session.scalars(query.order_by(Site.name))]
        operation = operations.submit(session, kind=body.kind, targets=refs, payload=payload,
                                      user_id=principal.user_id, project_id=principal.project_id, now=utcnow())
        out = operations.to_out(operation, TaskCounts(pending=len(refs)))
    runtime.wake()
    return out


@router.get("/{operation_id}", response_model=OperationDetail)
def show_operation(operation_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> OperationDetail:
    """The operation with each site's task: state, attempts, next attempt, last error, result."""
    with transaction(runtime.factory) as session:
        operation = operations.get_operation(session, operation_id, project_id=principal.project_id,
                                             admin=principal.is_admin)
        counts = operations.task_counts(session, [operation.id])[operation.id]
        return operations.to_detail(operation, counts, operations.list_tasks(session, operation.id))


@router.post("/{operation_id}/cancel", response_model=OperationOut)
def cancel_operation(operation_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> OperationOut:
    """Cancel the tasks not yet done; finished ones keep their outcome."""
    with transaction(runtime.factory) as session:
        operation = operations.get_operation(session, operation_id, project_id=principal.project_id,
                                             admin=principal.is_admin, for_update=True)
        operations.cancel(session, operation=operation, now=utcnow())
        return operations.to_out(operation, operations.task_counts(session, [operation.id])[operation.id])


@router.post("/{operation_id}/retry", status_code=status.HTTP_202_ACCEPTED, response_model=OperationOut)
def retry_operation(operation_id: str, runtime: RuntimeDep, principal: PrincipalDep) -> OperationOut:
    """Run the failed tasks again, with fresh attempts (409 when none failed)."""
    with transaction(runtime.factory) as session:
        operation = operations.get_operation(session, operation_id, project_id=principal.project_id,
                                             admin=principal.is_admin, for_update=True)
        operations.retry(session, operation=operation, now=utcnow())
        out = operations.to_out(operation, operations.task_counts(session, [operation.id])[operation.id])
    runtime.wake()
    return out
