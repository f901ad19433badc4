"""Controlled rollout of an image version: waves of sites, each settled and checked before the next.

Why it exists: a new image version must not reach a thousand sites at once when it may be bad. Under
mode ``controlled`` a version goes out in waves (``{"count": 1}`` a canary, ``{"percent": 10}``,
``{"group": "edge"}``, ``{"sites": [...]}``, ``{"rest": true}``), computed once from the placement
when the rollout starts. The sites of later waves keep the version they hold (their copies are
neither replaced nor deleted). When a wave's copies have settled, the wave is judged: more than
``max_failures`` failed sites pause the rollout, with the reason; otherwise the next wave starts, by
itself, from the continuation that folds the wave's outcomes (no reader, no poll). The previous
version's copies stay on every site until the rollout is done, so ``rollback`` can always put every
site back on the version that held the name before; the new copies are then deleted or deactivated,
as the caller chooses, and nothing else is touched. A user may pause, resume or abort (stop where it
is) at any time; a ``manual`` rollout pauses after every wave and goes on only when resumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from skyfleet.domains.events import service as events
from skyfleet.domains.sites.models import Site
from skyfleet.domains.sync.models import SyncBinding, SyncResource
from skyfleet.errors import Conflict, Invalid

DEFAULT_PLAN: list[dict[str, Any]] = [{"count": 1}, {"percent": 10}, {"rest": True}]
RUNNING, PAUSED, ABORTED, DONE, ROLLED_BACK = "running", "paused", "aborted", "done", "rolled-back"
WAVE_KEYS = ("count", "percent", "group", "sites", "rest")


def check_plan(plan: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The plan, each wave with exactly one valid key; :class:`Invalid` with the reason otherwise."""
    if not 1 <= len(plan) <= 100:
        raise Invalid("rollout.waves: give 1 to 100 waves")
    out = []
    for n, wave in enumerate(plan):
        keys = [k for k in WAVE_KEYS if k in wave]
        if len(keys) != 1 or set(wave) - set(WAVE_KEYS):
            raise Invalid(f"rollout.waves[{n}]: give exactly one of {', '.join(WAVE_KEYS)}")
        key, value = keys[0], wave[keys[0]]
        if key == "count" and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise Invalid(f"rollout.waves[{n}].count: a whole number of sites, at least 1")
        if key == "percent" and not (isinstance(value, int | float) and not isinstance(value, bool)
                                     and 0 < value <= 100):
            raise Invalid(f"rollout.waves[{n}].percent: more than 0, at most 100")
        if key == "group" and not (isinstance(value, str) and value):
            raise Invalid(f"rollout.waves[{n}].group: a group name")
        if key == "sites" and not (isinstance(value, list) and value and all(isinstance(s, str) for s in value)):
            raise Invalid(f"rollout.waves[{n}].sites: a list of site names")
        if key == "rest" and value is not True:
            raise Invalid(f"rollout.waves[{n}].rest: true")
        out.append({key: value})
    return out


def waves_of(plan: Sequence[dict[str, Any]], placed: Sequence[Site]) -> list[list[Site]]:
    """The sites of each wave, in plan order, each placed site in exactly one wave (sites no wave named
    form a last wave); empty waves are dropped."""
    left = sorted(placed, key=lambda s: s.name)
    total = len(left)
    waves: list[list[Site]] = []
    for wave in plan:
        if "count" in wave:
            taken = left[: wave["count"]]
        elif "percent" in wave:
            taken = left[: max(1, math.ceil(total * wave["percent"] / 100))]
        elif "group" in wave:
            taken = [s for s in left if s.group == wave["group"]]
        elif "sites" in wave:
            taken = [s for s in left if s.name in set(wave["sites"]) or s.id in set(wave["sites"])]
        else:
            taken = list(left)
        left = [s for s in left if s not in taken]
        if taken:
            waves.append(taken)
    if left:
        waves.append(left)
    return waves


def start(resource: SyncResource, *, placed: Sequence[Site], plan: Sequence[dict[str, Any]], max_failures: int,
          previous: dict[str, Any] | None, now: datetime, manual: bool = False) -> None:
    """Begin rolling out the resource's current generation (``previous``: the spec it replaces)."""
    waves = waves_of(plan, placed)
    resource.options = {**resource.options, "keep_previous": previous is not None, "previous_spec": previous,
                        "rollout": {"plan": list(plan), "max_failures": max_failures, "state": RUNNING,
                                    "manual": manual,
                                    "wave": 0, "generation": resource.generation, "reason": None,
                                    "waves": [[s.id for s in w] for w in waves],
                                    "wave_names": [[s.name for s in w] for w in waves],
                                    "started_at": now.isoformat(), "updated_at": now.isoformat()}}


def held(resource: SyncResource, placed: Sequence[Site]) -> set[str]:
    """Placed sites a running, paused or aborted rollout has not reached: their copies are left as they are."""
    return {s.id for s in placed if holds(resource, s.id)}


def holds(resource: SyncResource, site_id: str) -> bool:
    """Whether a running, paused or aborted rollout has not reached the site yet."""
    state = _rollout(resource)
    if state is None or state["state"] in (DONE, ROLLED_BACK):
        return False
    return not any(site_id in wave for wave in state["waves"][: state["wave"] + 1])


def judge(session: Any, resource: SyncResource, bindings: dict[str, SyncBinding], *, now: datetime) -> bool:
    """Judge the current wave once its copies settled: pause, start the next wave, or finish. True when
    the resource must be converged again (a new wave, or the old versions to retire)."""
    state = _rollout(resource)
    if state is None or state["state"] != RUNNING or state["generation"] != resource.generation:
        return False
    wave = state["waves"][state["wave"]]
    current = [bindings.get(sid) for sid in wave]
    if any(b is None or b.status in ("pending", "copying") for b in current):
        return False  # still under way (or not submitted yet)
    failed = [b for b in current if b is not None and not (b.status == "in-sync" and
                                                            b.generation == resource.generation)]
    names = ", ".join(b.site_name for b in failed[:5])
    if len(failed) > state["max_failures"]:
        _set(resource, now, state="paused", reason=f"wave {state['wave'] + 1}: {len(failed)} site(s) failed "
             f"({names}), more than max_failures {state['max_failures']}; resume, abort or roll back")
        _event(session, resource, now, "image.rollout_paused", "warning",
               f"rollout of image {resource.name!r} paused: wave {state['wave'] + 1} had {len(failed)} failure(s)")
        return False
    if state["wave"] + 1 < len(state["waves"]) and state.get("manual"):
        _set(resource, now, state=PAUSED, reason=f"wave {state['wave'] + 1} done; the next starts on resume "
             "(manual rollout)")
        return False
    if state["wave"] + 1 < len(state["waves"]):
        _set(resource, now, wave=state["wave"] + 1)
        _event(session, resource, now, "image.rollout_wave", "info",
               f"rollout of image {resource.name!r}: wave {state['wave'] + 2} of {len(state['waves'])} started")
        return True
    _set(resource, now, state=DONE, reason=None)
    resource.options = {**resource.options, "keep_previous": False}
    _event(session, resource, now, "image.rollout_done", "info",
           f"rollout of image {resource.name!r} done on {sum(len(w) for w in state['waves'])} site(s)")
    return True


def pause(resource: SyncResource, *, now: datetime) -> None:
    state = _require(resource, RUNNING)
    _set(resource, now, state=PAUSED, reason=f"paused by a user at wave {state['wave'] + 1}")


def resume(resource: SyncResource, *, now: datetime) -> None:
    """Go on: retry the current wave's failed sites, or start the next wave when this one is done."""
    state = _require(resource, PAUSED)
    settled = str(state.get("reason") or "").endswith("(manual rollout)")
    _set(resource, now, state=RUNNING, reason=None,
         wave=min(state["wave"] + 1, len(state["waves"]) - 1) if settled else state["wave"])


def abort(resource: SyncResource, *, now: datetime) -> None:
    state = _require(resource, RUNNING, PAUSED)
    _set(resource, now, state=ABORTED, reason=f"aborted by a user at wave {state['wave'] + 1}; the sites it "
         "reached keep the new version, the others the previous one (roll back to undo)")


def rollback(session: Any, resource: SyncResource, *, action: str, now: datetime) -> None:
    """Put every site back on the previous version; the new copies are deleted or deactivated."""
    previous = resource.options.get("previous_spec")
    if not previous:
        raise Conflict(f"image {resource.name!r} has no previous version to roll back to (delete it instead)")
    resource.spec = previous
    resource.generation += 1
    resource.updated_at = now
    resource.options = {**resource.options, "previous_spec": None, "keep_previous": False, "retire_action": action}
    if _rollout(resource) is not None:
        _set(resource, now, state=ROLLED_BACK, reason=f"rolled back by a user; new copies {action}d")
    _event(session, resource, now, "image.rollback", "warning",
           f"image {resource.name!r} rolled back to its previous version (new copies {action}d)")


def _rollout(resource: SyncResource) -> dict[str, Any] | None:
    found = resource.options.get("rollout")
    return found if isinstance(found, dict) else None


def _require(resource: SyncResource, *states: str) -> dict[str, Any]:
    state = _rollout(resource)
    if state is None or state["state"] not in states:
        now_state = state["state"] if state else "none"
        raise Conflict(f"image {resource.name!r}: the rollout is {now_state}, not {' or '.join(states)}")
    return state


def _set(resource: SyncResource, now: datetime, **changes: Any) -> None:
    state = dict(_rollout(resource) or {})
    state.update(changes, updated_at=now.isoformat())
    resource.options = {**resource.options, "rollout": state}
    resource.updated_at = now


def _event(session: Any, resource: SyncResource, now: datetime, kind: str, severity: str, message: str) -> None:
    events.record(session, kind=kind, severity=severity, site_id=None, site_name=None,
                  project_id=resource.scope or None, at=now, message=message,
                  details={"resource_id": resource.id, "generation": resource.generation})
