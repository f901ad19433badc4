"""The registry of task kinds. A kind is a small declarative module: a payload model and three
functions, observe -> diff -> apply, each idempotent; the engine knows nothing else about it.

``diff`` returns None when the site already matches the payload (nothing to do), else a plan that
``apply`` carries out. Re-running a kind after a crash observes the site again, so whatever a lost
attempt already did is seen and not done twice. A kind that creates in a site declares ``intent``:
what of a plan must be written down before ``apply`` runs (``{"create": True}``); the engine records
it on the task under the lease, and the attempt after a crash reads it as ``ctx.prior_intent``, so
an object it then finds matching the spec is known to be the lost attempt's work (Skyfleet's own).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from keystoneauth1 import session as ks_session
from openstack import connection as sdk_connection
from pydantic import BaseModel, ValidationError

from skyfleet.drivers.base import Record
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
    prior_intent: dict[str, Any] | None = None  # what an earlier attempt of this task recorded
    record_intent: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)
    # Decrypts a secret a payload carries sealed (a user's password), with the project's SecretBox.
    reveal: Callable[[str], dict[str, Any]] | None = field(default=None, repr=False)
    # Another registered site's credentials by site id (None when gone or unmanaged): a copy reads its
    # source there. Progress of a long task (bytes done), recorded on the task under the lease.
    peer: Callable[[str], dict[str, Any] | None] | None = field(default=None, repr=False)
    progress: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)
    # What the task just saw of a site's resources, written into the global view at once (best effort)
    # instead of at the next inventory refresh: a server a boot made shows there while it builds.
    seen: Callable[[list[Record]], None] | None = field(default=None, repr=False)

    @property
    def created_before(self) -> bool:
        """An earlier attempt of this task set out to create the object (and may have, before a crash)."""
        return bool(self.prior_intent and self.prior_intent.get("create"))

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

    def peer_connection(self, site_id: str) -> sdk_connection.Connection:
        """A connection to another site (a copy's source); a permanent error when it is gone."""
        auth = self.peer(site_id) if self.peer is not None else None
        if auth is None:
            raise PermanentSiteError(f"the source site ({site_id}) is no longer registered or not managed")
        return self.pool.connection(auth, timeout=self.timeout)

    def saw(self, records: list[Record]) -> None:
        """Tell the global view what the task just read of the site (a record with status DELETED: gone)."""
        if self.seen is not None and records:
            self.seen(records)

    def report(self, progress: dict[str, Any]) -> None:
        """Record how far a long task got (best effort: a lost write only delays the next report)."""
        if self.progress is not None:
            self.progress(progress)


@dataclass(frozen=True)
class TaskKind(Generic[P, O]):
    name: str
    description: str
    payload: type[P]
    observe: Callable[[SiteContext, P], O]
    diff: Callable[[P, O], Plan | None]
    apply: Callable[[SiteContext, P, Plan], dict[str, Any]]
    summary: Callable[[O], dict[str, Any]] = lambda _observed: {}
    intent: Callable[[Plan], dict[str, Any] | None] = lambda _plan: None
    # True: a temporary error never fails the task; past max_attempts it is "failing" and retried at most
    # ``RetryPolicy.failing_every`` apart (and at once when its site comes back online).
    persistent: bool = False

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
        intent = self.intent(plan)
        if intent and ctx.record_intent is not None:
            # durable before the site is changed; raises when it cannot be
            ctx.record_intent(with_prior(ctx.prior_intent, intent))
        return {"changed": True, **self.apply(ctx, payload, plan)}


def with_prior(prior: dict[str, Any] | None, intent: dict[str, Any]) -> dict[str, Any]:
    """``intent`` keeping what an earlier attempt, or a superseded predecessor whose intent the task
    inherited, set out to do: a create stays recorded and the groups to join add up. Recorded alone,
    a later attempt's narrower intent (joining one group) would erase the create, and the attempt
    after it would take the object a cut-short predecessor made for a pre-existing one (adopted)."""
    if not prior:
        return intent
    out = dict(intent)
    if prior.get("create"):
        out["create"] = True
    joined = {*(prior.get("join") or []), *(intent.get("join") or [])}
    if joined:
        out["join"] = sorted(joined)
    return out


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
        server_boot,
        server_manage,
        sync_domain,
        sync_flavor,
        sync_identity,
        sync_image,
        sync_keypair,
        sync_network,
        sync_read,
        sync_role,
        sync_secgroup,
        vpn_mesh,
    )
