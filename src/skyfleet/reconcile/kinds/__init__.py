"""The registry of task kinds. A kind is a small declarative module: a payload model and three
functions, observe -> diff -> apply, each idempotent; the engine knows nothing else about it.

``diff`` returns None when the site already matches the payload (nothing to do), else a plan that
``apply`` carries out. Re-running a kind after a crash observes the site again, so whatever a lost
attempt already did is seen and not done twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from keystoneauth1 import session as ks_session
from openstack import connection as sdk_connection
from pydantic import BaseModel, ValidationError

from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import Invalid, PermanentSiteError

P = TypeVar("P", bound=BaseModel)
O = TypeVar("O")  # noqa: E741
Plan = dict[str, Any]


@dataclass(frozen=True)
class SiteContext:
    """What a kind may use: the site's identity, credentials (never logged) and driver handles."""

    site_id: str
    site_name: str
    auth: dict[str, Any] = field(repr=False)
    timeout: float
    pool: SitePool

    @property
    def interface(self) -> str:
        return str(self.auth.get("interface", "public"))

    @property
    def region(self) -> str | None:
        return self.auth.get("region_name") or None

    def session(self) -> ks_session.Session:
        return self.pool.session(self.auth, timeout=self.timeout)

    def connection(self) -> sdk_connection.Connection:
        return self.pool.connection(self.auth, timeout=self.timeout)


@dataclass(frozen=True)
class TaskKind(Generic[P, O]):
    name: str
    description: str
    payload: type[P]
    observe: Callable[[SiteContext, P], O]
    diff: Callable[[P, O], Plan | None]
    apply: Callable[[SiteContext, P, Plan], dict[str, Any]]
    summary: Callable[[O], dict[str, Any]] = lambda _observed: {}

    def run(self, ctx: SiteContext, raw_payload: dict[str, Any]) -> dict[str, Any]:
        """Converge one site; the returned result is stored on the task."""
        try:
            payload = self.payload.model_validate(raw_payload)
        except ValidationError as exc:
            raise PermanentSiteError(f"invalid payload for {self.name}: {exc.errors()[:3]}") from exc
        observed = self.observe(ctx, payload)
        plan = self.diff(payload, observed)
        if plan is None:
            return {"changed": False, **self.summary(observed)}
        return {"changed": True, **self.apply(ctx, payload, plan)}


REGISTRY: dict[str, TaskKind[Any, Any]] = {}


def register(kind: TaskKind[Any, Any]) -> TaskKind[Any, Any]:
    if kind.name in REGISTRY and REGISTRY[kind.name] is not kind:
        raise ValueError(f"task kind {kind.name!r} is already registered")
    REGISTRY[kind.name] = kind
    return kind


def get_kind(name: str) -> TaskKind[Any, Any]:
    load_builtin()
    try:
        return REGISTRY[name]
    except KeyError:
        raise Invalid(f"unknown task kind {name!r}; known: {sorted(REGISTRY)}") from None


def validate_payload(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload normalised by the kind's model; :class:`Invalid` with the reason otherwise."""
    kind = get_kind(name)
    try:
        normalised: dict[str, Any] = kind.payload.model_validate(payload).model_dump(mode="json")
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}"
                             for e in exc.errors()[:5])
        raise Invalid(f"invalid payload for {name}: {problems}") from exc
    return normalised


def load_builtin() -> None:
    """Import the kinds that ship with Skyfleet (each registers itself)."""
    from skyfleet.reconcile.kinds import (  # noqa: F401
        keypair,
        probe,
        quota,
        sync_flavor,
        sync_keypair,
        sync_read,
        sync_secgroup,
    )
