"""Contract: the site-level driver calls against the sites -- session and probe, Nova's version
document, and how the driver classifies real failures
(temporary: over quota, conflicts; permanent: not found, forbidden by policy, bad request).

Each test calls the driver functions themselves.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import Any

import openstack.connection
import pytest
from contract_support import Site, Tenant, quiet, skyfleet_auth, unique
from keystoneauth1 import access

from skyfleet.drivers.base import ProbeResult
from skyfleet.drivers.openstack import compute
from skyfleet.drivers.openstack.audit_http import Answer, AuditHttp, Call
from skyfleet.drivers.openstack.errors import from_status, is_temporary_status, site_call, translate
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.drivers.openstack.probe import describe_error, probe_site, token_view, zone_names
from skyfleet.drivers.openstack.probe_loop import login_on_loop, probe_on_loop
from skyfleet.drivers.openstack.session import make_auth, make_session
from skyfleet.errors import PermanentSiteError, TemporarySiteError

pytestmark = pytest.mark.contract


@pytest.mark.covers("session.make_session", "session.make_auth", "compute.compute_version")
def test_session_and_compute_version(site: Site) -> None:
    auth = skyfleet_auth(site)
    assert type(make_auth(auth)).__name__ == "Password"
    session = make_session(auth, timeout=60)
    found = compute.compute_version(session, interface=auth["interface"], region=auth["region_name"])
    assert found.endpoint.rstrip("/").endswith("/v2.1") or "/v2.1/" in found.endpoint
    assert found.version == "2.1"
    assert found.max_microversion is not None
    major, minor = (int(p) for p in found.max_microversion.split("."))
    assert (major, minor) >= (2, 88)  # the version the inventory must not read hypervisors at


@pytest.mark.covers("probe.probe_site", "probe.describe_error")
def test_probe_reaches_every_service(site: Site) -> None:
    result = probe_site(skyfleet_auth(site), timeout=60)
    assert result.reachable and result.error is None, result
    services = {s.type: s for s in result.services}
    assert {"identity", "compute", "image", "network", "block-storage", "placement"} <= set(services)
    assert all(s.ok for s in services.values()), services
    assert services["compute"].max_microversion and services["block-storage"].max_microversion
    assert "nova" in result.availability_zones

    wrong = probe_site({**skyfleet_auth(site), "password": uuid.uuid4().hex}, timeout=60)
    assert not wrong.reachable
    assert wrong.error == "authentication failed (401 Unauthorized)"
    with pytest.raises(Exception) as err:
        make_session({**skyfleet_auth(site), "password": uuid.uuid4().hex}, timeout=60).get_token()
    assert describe_error(err.value) == "authentication failed (401 Unauthorized)"


@pytest.mark.covers("pool.SitePool.share", "pool.SitePool.session", "pool.SitePool.connection")
def test_the_probes_login_serves_the_pools_next_calls(site: Site) -> None:
    """The health audit's token, handed to the process's pool, is what the pool's session and connection
    then use: a call through them is answered with that token, and no second login is made."""
    auth, pool = skyfleet_auth(site), SitePool()
    assert probe_site(auth, timeout=60, share=pool).reachable
    session = pool.session(auth, timeout=60)
    shared = session.auth.auth_ref
    assert shared is not None and session.get_token() == shared.auth_token
    conn = pool.connection(auth, timeout=60)
    answer = conn.compute.get("/flavors")
    assert answer.status_code == 200 and isinstance(answer.json()["flavors"], list)
    assert session.auth.auth_ref is shared  # the call used the probe's token: no login of its own
    assert probe_site(auth, timeout=60, share=pool).reachable  # the next audit's login replaces it
    assert session.auth.auth_ref is not shared and session.get_token() == session.auth.auth_ref.auth_token


def _failure(fn: object, *args: object, **kwargs: object) -> PermanentSiteError | TemporarySiteError:
    with pytest.raises((PermanentSiteError, TemporarySiteError)) as err, site_call():
        fn(*args, **kwargs)  # type: ignore[operator]
    assert isinstance(err.value, PermanentSiteError | TemporarySiteError)
    return err.value


@pytest.mark.covers("errors.site_call", "errors.translate", "errors.from_status", "errors.is_temporary_status")
def test_real_failures_are_classified(site: Site, project: Tenant) -> None:
    admin: openstack.connection.Connection = site.admin
    member = project.conn
    pid = project.project_id

    missing = _failure(admin.compute.get_flavor, uuid.uuid4().hex)
    assert isinstance(missing, PermanentSiteError) and missing.status == 404

    denied = _failure(member.compute.create_flavor, name=unique("flavor"), ram=64, vcpus=1, disk=1)
    assert isinstance(denied, PermanentSiteError) and denied.status == 403

    admin.block_storage.update_quota_set(pid, volumes=0)
    admin.network.update_quota(pid, networks=0)
    try:
        cinder = _failure(member.block_storage.create_volume, name=unique("vol"), size=1)
        assert isinstance(cinder, TemporarySiteError) and cinder.status == 413, cinder
        neutron = _failure(member.network.create_network, name=unique("net"))
        assert isinstance(neutron, TemporarySiteError) and neutron.status == 409, neutron
    finally:
        quiet(admin.block_storage.revert_quota_set, pid)
        quiet(admin.network.delete_quota, pid)

    # The same answers through the plain helpers: an over-quota 403 is temporary, a policy 403 is not.
    assert is_temporary_status(403, "Quota exceeded for instances: Requested 1, but already used 0 of 0")
    assert not is_temporary_status(403, "Policy doesn't allow os_compute_api:os-flavor-manage:create")
    assert isinstance(from_status(503, "down"), TemporarySiteError)
    assert translate(missing) is missing


class _OneSlot:
    """A gate of one slot (what the priority lanes give while user work runs), counting the most held."""

    def __init__(self) -> None:
        self.held, self.most, self.lock = 0, 0, threading.Semaphore(1)

    def try_take_background(self) -> bool:
        if not self.lock.acquire(blocking=False):
            return False
        self.held += 1
        self.most = max(self.most, self.held)
        return True

    def take_background(self) -> None:
        self.lock.acquire()
        self.held += 1
        self.most = max(self.most, self.held)

    def free_background(self) -> None:
        self.held -= 1
        self.lock.release()


@pytest.mark.covers("probe.token_view", "probe.zone_names", "audit_http.AuditHttp.submit",
                    "audit_http.AuditHttp.start_many", "audit_http.AuditHttp.close")
def test_the_audits_cheap_call_with_the_probes_token(site: Site) -> None:
    """The health audit's cheap call: the token a session holds, the compute zones URL of its catalog,
    one GET with that token on the audit's event loop. The site answers the zones the full probe read;
    a token the site does not know is refused with 401, a closed port is an error, never a raise."""
    auth = skyfleet_auth(site)
    session = make_session(auth, timeout=60)
    assert token_view(session, interface=auth["interface"], region=auth["region_name"]) is None  # no login
    probed = probe_site(auth, timeout=60, session=session)
    view = token_view(session, interface=auth["interface"], region=auth["region_name"])
    assert view is not None and view.zones_url is not None and view.zones_url.endswith("/os-availability-zone")
    assert view.expires_at > time.time() + 300
    again = probe_site(auth, timeout=60, session=session)  # a fresh token is reused: no login
    assert again.reachable and session.auth.auth_ref.auth_token == view.token
    http = AuditHttp(concurrency=4)
    try:
        answer = http.submit(Call(site="s", url=view.zones_url, token=view.token, timeout=60)).result(90)
        assert answer.status == 200 and answer.error is None, answer
        assert zone_names(answer.body) == probed.availability_zones and "nova" in probed.availability_zones
        refused = http.submit(Call(site="s", url=view.zones_url, token=uuid.uuid4().hex, timeout=60)).result(90)
        assert refused.status == 401
        closed = http.submit(Call(site="s", url="http://127.0.0.1:9/os-availability-zone", token="t",
                                  timeout=5)).result(30)
        assert closed.status is None and closed.error is not None and closed.error.startswith("cannot connect")
        answers: dict[int, int | None] = {}
        all_in, gate = threading.Event(), _OneSlot()

        def answered(index: int, answer: Answer) -> None:
            answers[index] = answer.status
            if len(answers) == 3:
                all_in.set()

        http.start_many([Call(site=f"s{i}", url=view.zones_url, token=token, timeout=60)
                         for i, token in enumerate((view.token, "not-a-token", view.token))], answered, gate)
        assert all_in.wait(90)
        assert answers == {0: 200, 1: 401, 2: 200} and gate.most == 1 and gate.held == 0
    finally:
        http.close()
    assert zone_names({"availabilityZoneInfo": [{"zoneName": "b", "zoneState": {"available": True}},
                                                {"zoneName": "a", "zoneState": {"available": False}}]}) == ["b"]


def _timeless(result: ProbeResult) -> ProbeResult:
    """A probe's result without its timings (the one thing two probes of a site may not agree on)."""
    return dataclasses.replace(result, latency_ms=None,
                               services=[dataclasses.replace(s, latency_ms=None) for s in result.services])


@pytest.mark.covers("probe_loop.probe_on_loop", "audit_http.AuditHttp.run", "audit_http.AuditHttp.fetch")
def test_the_full_probe_on_the_audits_loop_is_probe_site(site: Site) -> None:
    """The health audit's full probe on its event loop finds what ``probe_site`` finds (services, versions,
    zones, errors); its login leaves the token in the keystoneauth session, which then calls with it (no
    login of its own); a token the site refuses costs one new login; a wrong password and a Keystone that
    does not answer are described as ``probe_site`` describes them."""
    auth = skyfleet_auth(site)
    http = AuditHttp(concurrency=8)

    def on_loop(auth: dict[str, Any], session: Any, gate: _OneSlot | None = None) -> ProbeResult:
        return http.run(lambda: probe_on_loop(http, "s", auth, session, timeout=60), gate).result(180)

    try:
        session = make_session(auth, timeout=60)
        gate = _OneSlot()
        first = on_loop(auth, session, gate)  # no token yet: it logs in, on the loop
        assert gate.most == 1 and gate.held == 0
        ref = session.auth.auth_ref
        assert ref is not None and first.reachable and first.error is None, first
        assert _timeless(first) == _timeless(probe_site(auth, timeout=60))
        assert "nova" in first.availability_zones and {s.type for s in first.services} >= {"identity", "compute"}
        assert _timeless(on_loop(auth, session)) == _timeless(first)
        assert session.auth.auth_ref is ref  # a fresh token is reused: no login
        assert session.get_token() == ref.auth_token  # keystoneauth's own calls use the loop's token
        catalog = session.get_endpoint(service_type="compute", interface=auth["interface"],
                                       region_name=auth["region_name"])
        assert session.get(catalog.rstrip("/") + "/os-availability-zone").status_code == 200

        session.auth.auth_ref = access.AccessInfoV3(auth_token=uuid.uuid4().hex, body=ref._data)  # refused
        again = on_loop(auth, session)
        assert _timeless(again) == _timeless(first)
        assert session.auth.auth_ref.auth_token not in (ref.auth_token, None)  # one new login

        wrong = {**auth, "password": uuid.uuid4().hex}
        refused = on_loop(wrong, make_session(wrong, timeout=60))
        assert _timeless(refused) == _timeless(probe_site(wrong, timeout=60))
        assert not refused.reachable and refused.error == "authentication failed (401 Unauthorized)"
        closed = {**auth, "auth_url": "http://127.0.0.1:9/v3"}
        silent = on_loop(closed, make_session(closed, timeout=5))
        assert not silent.reachable and silent.error == probe_site(closed, timeout=5).error
        assert silent.error == "cannot connect: ConnectFailure"
        answer = http.submit(Call(site="s", url=first.services[0].endpoint or "", token="",
                                  timeout=60)).result(90)
        assert answer.status is not None and answer.subject_token is None
    finally:
        http.close()


@pytest.mark.covers("probe_loop.login_on_loop")
def test_a_login_on_the_audits_loop_reads_its_token_as_keystoneauth_does(site: Site) -> None:
    """The login a restarted health audit makes before its cheap call: on the loop, its token left in the
    keystoneauth session and read as ``token_view`` reads it (expiry, the compute zones URL), which the
    site then takes; a fresh token is reused (no second login); a wrong password and a Keystone that does
    not answer give the errors the full probe gives."""
    auth = skyfleet_auth(site)
    http = AuditHttp(concurrency=4)

    def login(auth: dict[str, Any], session: Any) -> Any:
        return http.run(lambda: login_on_loop(http, "s", session, interface=auth["interface"],
                                              region=auth["region_name"], timeout=60)).result(120)

    try:
        session = make_session(auth, timeout=60)
        view, error = login(auth, session)
        assert error is None and view is not None and view.zones_url is not None
        assert view == token_view(session, interface=auth["interface"], region=auth["region_name"])
        assert view.expires_at > time.time() + 300
        answer = http.submit(Call(site="s", url=view.zones_url, token=view.token, timeout=60)).result(90)
        assert answer.status == 200 and "nova" in zone_names(answer.body), answer
        assert login(auth, session) == (view, None)  # a fresh token: no new login
        wrong = {**auth, "password": uuid.uuid4().hex}
        assert login(wrong, make_session(wrong, timeout=60)) == (None, "authentication failed (401 Unauthorized)")
        closed = {**auth, "auth_url": "http://127.0.0.1:9/v3"}
        assert login(closed, make_session(closed, timeout=5)) == (None, "cannot connect: ConnectFailure")
    finally:
        http.close()
