"""Cheap cycles of the health audit: an unchanged, online site costs one authenticated GET per cycle.

Why it exists: a full probe (login, every service's version document, the availability zones) costs
about 13 ms of CPU per site, most of it keystoneauth's login; at 10,000 sites a cycle took 150 s. What
this module keeps, per site and per process (``AuditMemory``): the site's decrypted auth, the
keystoneauth session (shared with the process's ``SitePool``) whose token is reused until it nears
expiry, and how many cheap cycles are left before the next full probe.

A cheap cycle is one ``GET <compute>/os-availability-zone`` with the site's token, on the audit's
event loop (``drivers.openstack.audit_http``). It proves that the token is still taken (Nova checks
it with Keystone), that Nova answers, and that the zones are the stored ones. When the process holds
no usable token for the site (after a start, for a site a full probe recorded online with its zones;
or a token near expiry), a login on the loop comes first (``seed``, ``login_first``). The full probe
runs instead when: the process has not probed the site and there is no such record (or its credential
changed), the site is not ``online``, every ``full_every`` cycles (staggered per site, so a cycle does
about 1/N of them), or at once in the same cycle when the cheap GET fails, is refused (401: the token
is dropped and the full probe logs in again, once), or answers other zones.
"""

from __future__ import annotations

import math
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

from skyfleet.drivers.base import ProbeResult, ServiceProbe
from skyfleet.drivers.openstack.audit_http import Answer, AuditHttp, Call
from skyfleet.drivers.openstack.pool import SitePool
from skyfleet.drivers.openstack.probe import TokenView, token_view, zone_names
from skyfleet.secrets import SecretBox

TOKEN_MARGIN = 120.0  # seconds of token life below which the next call logs in (keystoneauth's own margin)


@dataclass
class Memo:
    """What the audit keeps of one site between cycles (in this process only)."""

    encrypted: str  # the stored auth this memo was made from: another one makes a new memo
    auth: dict[str, Any]
    session: Any = None  # the keystoneauth session of the process's pool for this credential
    ref: Any = None  # the token (AccessInfo) ``view`` was read from
    view: TokenView | None = None
    cheap_left: int = 0  # cheap cycles before the next full probe
    probed: bool = False  # a full probe of this process has seen the site
    zones: list[str] | None = None  # the zones the last full probe saw: a cheap answer with others is a change
    compute_url: str | None = None  # the compute endpoint the last full probe used (read from its catalog)


@dataclass
class Cheap:
    """One site's cheap call in flight."""

    site_id: str
    call: Call
    zones: list[str]  # the zones the last full probe saw: another answer is a change
    memo: Memo


@dataclass
class AuditMemory:
    """The health audit's per-process memory of every site it audits, and its event loop client."""

    full_every: int = 10
    concurrency: int = 64
    stagger: bool = True  # spread the first full-probe phase of each site over the N cycles (by its id)
    memos: dict[str, Memo] = field(default_factory=dict)
    http: AuditHttp | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def client(self) -> AuditHttp:
        with self._lock:
            if self.http is None:
                self.http = AuditHttp(concurrency=self.concurrency)
            return self.http

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    def memo(self, site_id: str, encrypted: str, box: SecretBox) -> Memo:
        """The site's memo, decrypting its auth only when it is new or changed."""
        found = self.memos.get(site_id)
        if found is None or found.encrypted != encrypted:
            found = self.memos[site_id] = Memo(encrypted=encrypted, auth=box.decrypt(encrypted))
        return found

    def forget_except(self, site_ids: set[str], in_scope: Any) -> None:
        """Drop the memos of sites no longer audited (deleted, unmanaged) among those ``in_scope`` says."""
        for site_id in [s for s in list(self.memos) if s not in site_ids and in_scope(s)]:
            self.memos.pop(site_id, None)

    def session(self, memo: Memo, pool: SitePool, timeout: float) -> Any:
        if memo.session is None:
            memo.session = pool.session(memo.auth, timeout=timeout)
        return memo.session

    def after_full(self, site_id: str, memo: Memo, result: ProbeResult) -> None:
        """A full probe ran: the next one is ``full_every`` cycles away (the first one of this process
        lands on a per-site offset, so that the fleet's full probes spread over the cycles)."""
        memo.zones = list(result.availability_zones) if result.reachable else None
        memo.compute_url = next((s.endpoint for s in result.services if s.type == "compute" and s.ok), None)
        self._schedule(site_id, memo)

    def _schedule(self, site_id: str, memo: Memo) -> None:
        every = max(1, self.full_every)
        first = not memo.probed and self.stagger
        memo.cheap_left = 1 + zlib.crc32(site_id.encode()) % (every - 1) if first and every > 2 else every - 1
        memo.probed = True

    def seed(self, site_id: str, memo: Memo, zones: list[str]) -> None:
        """A site that a full probe of another process (or of this one before a restart) recorded online,
        with these zones, and this process has not probed: its first cycle here is a login and the cheap
        call (``login_first``), not the full probe, whose turn comes on the site's offset as above. A
        restarted controller then logs in to its fleet without re-reading every version document."""
        if self.full_every <= 1 or memo.probed:
            return
        memo.zones, memo.compute_url = list(zones), None
        self._schedule(site_id, memo)

    def login_first(self, memo: Memo, availability: str) -> bool:
        """Whether the site's cheap call is due but its session holds no usable token: a login on the
        audit's loop, then the cheap call (``probe_loop.login_on_loop``), instead of the full probe."""
        return (self.full_every > 1 and memo.probed and memo.cheap_left > 0 and availability == "online"
                and memo.zones is not None)

    def after_login(self, memo: Memo, session: Any, view: TokenView) -> None:
        """The login's token is the one the next cheap calls use (its compute endpoint read from it)."""
        memo.ref, memo.view = getattr(session.auth, "auth_ref", None), view
        suffix = "/os-availability-zone"
        if view.zones_url is not None and view.zones_url.endswith(suffix):
            memo.compute_url = view.zones_url[:-len(suffix)]

    @staticmethod
    def _view(memo: Memo, session: Any, ref: Any) -> TokenView | None:
        """The token's view; the compute endpoint from the last full probe when there is one (looking it up
        in the token's catalog copies the whole catalog: about as costly as the cheap call itself)."""
        if memo.compute_url is None or not getattr(ref, "auth_token", None):
            return token_view(session, interface=memo.auth.get("interface", "public"),
                              region=memo.auth.get("region_name") or None)
        expires = ref.expires.timestamp() if ref.expires is not None else math.inf
        return TokenView(token=str(ref.auth_token), expires_at=expires,
                         zones_url=memo.compute_url.rstrip("/") + "/os-availability-zone")

    def cheap(self, site_id: str, memo: Memo, *, availability: str, pool: SitePool,
              timeout: float) -> Cheap | None:
        """The cheap call this cycle makes for the site, or None when a full probe is due."""
        if self.full_every <= 1 or not memo.probed or memo.cheap_left <= 0 or availability != "online":
            return None
        session = self.session(memo, pool, timeout)
        ref = getattr(session.auth, "auth_ref", None)
        if ref is None:
            return None
        if ref is not memo.ref:  # a new token (this audit's login, or the engine's): read it once
            memo.ref, memo.view = ref, self._view(memo, session, ref)
        view = memo.view
        if view is None or view.zones_url is None or view.expires_at - time.time() < max(TOKEN_MARGIN, 2 * timeout):
            return None
        if memo.zones is None:
            return None
        verify = session.verify if isinstance(session.verify, bool | str) else True
        return Cheap(site_id, Call(site=site_id, url=view.zones_url, token=view.token, verify=verify,
                                   timeout=timeout), memo.zones, memo)


def judge(cheap: Cheap, answer: Answer, region: str | None) -> ProbeResult | None:
    """The cheap cycle's result, or None when the full probe must run now (the call failed, was refused,
    or answered other zones). A 401 drops the token first, so that the full probe logs in again."""
    if answer.status == 401:
        session = cheap.memo.session
        if session is not None:
            session.invalidate()
        return None
    if answer.status != 200 or answer.error is not None or zone_names(answer.body) != cheap.zones:
        return None
    ms = round(answer.seconds * 1000, 2)
    if not math.isfinite(ms):
        return None
    return ProbeResult(reachable=True, services=[ServiceProbe(type="compute", endpoint=cheap.call.url, ok=True,
                                                              latency_ms=ms)],
                       availability_zones=cheap.zones, region_name=region, latency_ms=ms, full=False)
