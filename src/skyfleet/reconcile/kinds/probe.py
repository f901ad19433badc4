"""``site.probe``: a read-only kind, one cheap call to the site (the compute version document).

It proves credentials, catalog and compute endpoint work, and is what the fan-out benchmark runs.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from skyfleet.drivers.openstack.compute import ComputeVersion, compute_version
from skyfleet.reconcile.kinds import Plan, SiteContext, TaskKind, register


class ProbePayload(BaseModel):
    model_config = ConfigDict(extra="forbid")


def observe(ctx: SiteContext, _payload: ProbePayload) -> ComputeVersion:
    return compute_version(ctx.session(), interface=ctx.interface, region=ctx.region)


def diff(_payload: ProbePayload, _observed: ComputeVersion) -> Plan | None:
    return None  # read-only: there is never anything to change


def apply(_ctx: SiteContext, _payload: ProbePayload, _plan: Plan) -> dict[str, Any]:
    raise AssertionError("site.probe never applies anything")


def summary(observed: ComputeVersion) -> dict[str, Any]:
    return {"compute_version": observed.version, "max_microversion": observed.max_microversion}


KIND = register(TaskKind(name="site.probe", description="Read the compute API version of the site.",
                         payload=ProbePayload, observe=observe, diff=diff, apply=apply, summary=summary))
