"""The sync kinds never fall back on the site credential's own project or user for a tenant's
resource: without an owner and without ``site_scope`` (a fleet admin's choice) they refuse."""

from __future__ import annotations

from typing import Any

import openstack
import pytest

from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.errors import PermanentSiteError
from skyfleet.reconcile.kinds import SiteContext, get_kind, load_builtin
from skyfleet.simulator import Simulator
from tests.engine_support import PUBLIC_KEY
from tests.functional.conftest import site_auth


def run(sim: Simulator, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    load_builtin()
    site = sim.site_names()[2]
    ctx = SiteContext(site_id=site, site_name=site, auth=site_auth(sim, site), timeout=5, pool=SitePool())
    task = get_kind(kind)
    p = task.payload.model_validate(payload)
    seen = task.observe(ctx, p)
    plan = task.diff(p, seen)
    return task.apply(ctx, p, plan) if plan is not None else task.summary(seen)


def admin_groups(sim: Simulator) -> set[str]:
    conn = openstack.connect(**sim.cloud(sim.site_names()[2]))
    return {g.name for g in conn.network.security_groups(project_id=conn.current_project_id)}


def test_a_tenant_group_without_its_project_is_refused_not_put_in_the_admin_project(sim: Simulator) -> None:
    with pytest.raises(PermanentSiteError, match="never as the site's own"):
        run(sim, "sync.security_group", {"name": "open-to-all", "rules": [{"remote_ip_prefix": "0.0.0.0/0"}]})
    assert "open-to-all" not in admin_groups(sim)
    with pytest.raises(PermanentSiteError, match="never as the site's own"):
        run(sim, "sync.keypair", {"name": "k", "public_key": PUBLIC_KEY})


def test_a_tenant_group_lands_in_the_tenants_project(sim: Simulator) -> None:
    conn = openstack.connect(**sim.cloud(sim.site_names()[2], user="demo"))
    done = run(sim, "sync.security_group", {"name": "web-t", "project": {"name": "demo"}})
    assert done["status"] == "in-sync"
    assert "web-t" in {g.name for g in conn.network.security_groups(project_id=conn.current_project_id)}
    assert "web-t" not in admin_groups(sim)


def test_site_scope_is_the_admins_explicit_choice(sim: Simulator) -> None:
    done = run(sim, "sync.security_group", {"name": "ops-only", "site_scope": True})
    assert done["status"] == "in-sync" and "ops-only" in admin_groups(sim)
