"""Skyfleet settings, grouped by concern, each with a default and a description.

Settings come from environment variables (prefix ``SKYFLEET_``) or an optional ``.env`` file,
and are validated once at start-up (``skyfleet config check`` shows the result).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

AuthMode = Literal["keystone", "noauth"]
MAX_INTERVAL_SECONDS = 366 * 86400.0
LogFormat = Literal["auto", "text", "json"]


class RetryPolicy(BaseModel):
    """Backoff of a task whose site call failed temporarily (tenacity's exponential-with-jitter, as data).

    Attempt n (1-based) that fails waits ``min(max_delay, initial * multiplier ** (n - 1))`` plus a random
    ``0..jitter`` fraction of that; after ``max_attempts`` the task fails with the site's last error,
    unless its kind never gives up (desired resources): then it is marked failing and tried again at
    most ``failing_every`` seconds apart until the site answers.
    """

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    initial: float = Field(1.0, gt=0, description="Seconds before the first retry.")
    multiplier: float = Field(2.0, ge=1, description="Growth of the delay per attempt.")
    max_delay: float = Field(300.0, gt=0, description="Cap of one delay, in seconds.")
    jitter: float = Field(0.5, ge=0, le=1, description="Random extra delay, as a fraction of the delay.")
    max_attempts: int = Field(6, ge=1, le=1000, description="Attempts before the task fails.")
    failing_every: float = Field(
        60.0, gt=0, description="Kinds that never give up on a temporary error (the sync kinds): their delay "
        "is capped at this, and after max_attempts they are marked failing and tried again this often.")


class Settings(BaseSettings):
    """Everything Skyfleet can be configured with."""

    model_config = SettingsConfigDict(env_prefix="SKYFLEET_", env_file=".env", extra="ignore", allow_inf_nan=False)

    # --- storage -----------------------------------------------------------------------------
    data_dir: Path = Field(Path("var"), description="Where the SQLite file and the key file live.")
    database_url: str = Field(
        "", description="SQLAlchemy URL; empty means SQLite at <data_dir>/skyfleet.db."
    )
    auto_migrate: bool = Field(True, description="Apply database migrations when the server starts.")

    # --- secrets -----------------------------------------------------------------------------
    secret_keys: SecretStr | None = Field(
        None,
        description="Comma-separated Fernet keys, newest first. Empty: use <data_dir>/fernet.keys.",
    )

    # --- API -----------------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address the API binds to.")
    port: int = Field(8080, ge=1, le=65535, description="Port the API binds to.")
    auth_mode: AuthMode = Field("keystone", description="keystone (validate X-Auth-Token) or noauth.")
    noauth_allowed_hosts: str = Field(
        "", description="noauth mode: comma-separated extra Host names taken as this machine (besides "
        "localhost, 127.0.0.0/8 and [::1]), e.g. a name /etc/hosts maps to loopback.")
    home_auth_url: str = Field("", description="Keystone v3 URL that authenticates Skyfleet's users.")
    home_username: str = Field("", description="Service user used to validate tokens.")
    home_password: SecretStr = Field(SecretStr(""), description="Password of the service user.")
    home_project_name: str = Field("admin", description="Project of the service user.")
    home_user_domain_name: str = Field("Default", description="Domain of the service user.")
    home_project_domain_name: str = Field("Default", description="Domain of the service project.")
    home_domain_name: str = Field(
        "Default", description="Domain of a user's or project's name where the home Keystone's token does not say "
        "it; names are looked up in the same-named domain of a site that shares nothing.")
    home_region_name: str = Field("", description="Region of the home Keystone (empty: any).")
    home_verify: bool = Field(True, description="Verify the home Keystone's TLS certificate.")
    token_cache_seconds: float = Field(60.0, ge=0, description="How long a validated token is trusted.")
    admin_role: str = Field("admin", description="Keystone role that makes a user a fleet admin.")
    admin_project_name: str = Field(
        "admin", description="Project on which the admin role makes a fleet admin (a system-scoped token with the "
        "admin role also does). The admin role on any other project makes a tenant of that project, nothing more. "
        "Empty: the admin role on any project (not recommended where tenants can be project admins).")
    admin_project_domain_name: str = Field("Default", description="Domain of admin_project_name.")
    reader_roles: str = Field(
        "reader", description="Comma-separated roles that only read: a token whose roles are all in this list may "
        "read its project's rows and change nothing.")
    fanout_rate: float = Field(
        2.0, ge=0, description="Requests per second, per caller, that may start work on sites (declaring a "
        "resource, os-sync jobs, live reads); 0 turns the limit off. Fleet admins are not limited.")
    fanout_burst: int = Field(30, ge=1, description="Such requests one caller may make at once before the rate "
                              "applies (429 with Retry-After beyond it).")
    signin_failure_rate: float = Field(
        0.1, ge=0, description="Failed sign-ins (POST /v1/auth/tokens, /v1/auth/session) forgiven per second, "
        "per source address; 0 turns the limit off.")
    signin_failure_burst: int = Field(5, ge=1, description="Failed sign-ins one source may make before the rate "
                                      "applies (429 with Retry-After, without asking Keystone).")
    session_cookie_secure: bool = Field(
        False, description="Mark the dashboard's session and CSRF cookies Secure (sent over https only) even when "
        "the request reached Skyfleet over http, as behind a TLS-terminating proxy; they are Secure anyway when "
        "the request came over https. Also takes https://<Host> as the dashboard's own origin.")
    session_max: int = Field(
        10_000, ge=1, le=1_000_000, description="Dashboard sessions (cookie sign-ins) one API process keeps in "
        "memory at most; one more signs the oldest out.")
    session_max_seconds: float = Field(
        43_200.0, gt=0, description="Longest life of a dashboard session, in seconds; it ends sooner when its "
        "Keystone token expires.")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, le=1024 * 1024 * 1024,
        description="Largest request body accepted, in bytes; a larger one is answered 413 before it is parsed "
        "(by Content-Length, or while a chunked body streams in).")

    # --- observing Skyfleet itself (docs/observe.md) ----------------------------------------------
    log_format: LogFormat = Field(
        "auto", description="Log lines as text, or as one JSON object per line carrying request, principal, "
        "operation, task and site ids; auto: text on a terminal, JSON otherwise (under systemd, in a container).")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Lowest level logged.")
    metrics_token: SecretStr = Field(
        SecretStr(""), description="Bearer token a Prometheus server sends (Authorization: Bearer ...) to read "
        "GET /metrics without a Keystone token; empty: only fleet admins read it. At least 16 characters.")
    metrics_site_series_max: int = Field(
        500, ge=0, le=100_000, description="Per-site series (availability, latency, inventory age) are exported "
        "while the fleet has at most this many managed sites; above it only fleet-wide aggregates are.")
    metrics_quota_series_max: int = Field(
        1000, ge=0, le=100_000, description="Quota usage ratio series (one per project and limited resource) "
        "exported at most; above it, or when the per-site usage rows to sum exceed 200 per series, only the "
        "count of breached projects is.")
    events_stream_max: int = Field(
        100, ge=1, le=10_000, description="Live event streams (GET /v1/events/stream) one API process serves at "
        "once; one more is answered 429.")
    events_stream_poll_seconds: float = Field(
        1.0, ge=0.05, le=60, description="Seconds between two looks for new events of one stream (each a short "
        "transaction: no database connection is held while a stream is idle).")
    events_stream_heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, description="Seconds of silence after which a stream sends a comment line, so "
        "proxies and clients see the connection alive.")
    shutdown_grace_seconds: int = Field(
        10, ge=1, le=3600, description="On SIGTERM, requests still open after this many seconds are cut (live "
        "event streams would otherwise hold a stopping server for events_stream_max_seconds; their clients "
        "resume elsewhere with Last-Event-ID).")
    events_stream_max_seconds: float = Field(
        3600.0, gt=0, description="Longest life of one stream; the client reconnects with Last-Event-ID (and "
        "its token is validated again).")

    # --- sites and health ------------------------------------------------------------------------
    site_timeout: float = Field(10.0, gt=0, description="Timeout of one call to a site, in seconds.")
    audit_interval: float = Field(60.0, gt=0, description="Seconds between two health audits.")
    audit_concurrency: int = Field(64, ge=1, le=4096, description="Sites probed at once by one process.")
    offline_after_misses: int = Field(2, ge=1, description="Consecutive failed audits before offline.")
    audit_full_every: int = Field(
        10, ge=1, le=10_000, description="An online site gets the full probe (login when due, every service's "
        "version document, the zones) every this many audits, staggered per site; the audits between make one "
        "authenticated call (the compute zones) with the site's token. 1: every audit is a full probe.")
    audit_shards: int = Field(
        1, ge=1, le=1024, description="Split each health audit into this many shards, each claimed on its own, "
        "so that several processes share one cycle (1 = one process audits every site).")
    site_url_allow: str = Field(
        "", description="Comma-separated CIDRs or host patterns (fnmatch, *.example.net) a site's auth_url must "
        "match; empty: any host not denied.")
    site_url_deny: str = Field(
        "169.254.0.0/16,fe80::/10", description="Comma-separated CIDRs or host patterns a site's auth_url must "
        "not match (deny wins over allow). Default: link-local addresses, where cloud metadata services live.")
    workers_enabled: bool = Field(True, description="Run the periodic workers inside `skyfleet serve`.")
    periodic_jobs: bool = Field(
        True, description="Run the claimed periodic jobs (audits, refreshes, quota rounds) in this process; "
        "off for processes dedicated to tasks.")
    background_floor: int = Field(
        2, ge=1, le=4096, description="While user-started tasks run in this process, the periodic fan-outs "
        "(health audit, inventory refresh, drift audit) make at most this many site calls at once; at least 1, so they "
        "slow down but never stop. They go back to their own concurrency when the user tasks end.")

    # --- inventory (the global view) -----------------------------------------------------------------
    inventory_interval: float = Field(30.0, gt=0, description="Seconds between incremental inventory refreshes.")
    inventory_full_interval: float = Field(600.0, gt=0, description="Seconds between full inventory refreshes.")
    inventory_concurrency: int = Field(64, ge=1, le=4096, description="Sites read at once by an inventory refresh.")

    # --- indicators (per-site time series, docs/observe.md) -------------------------------------------
    indicator_retention: float = Field(
        7 * 86400.0, ge=3600, le=366 * 86400, description="Seconds an indicator sample is kept; older ones are "
        "deleted by a periodic prune.")
    indicator_interval: float = Field(
        300.0, ge=0, le=86400, description="Least seconds between two samples of one site (the bounded sample "
        "rate): audits and refreshes that come sooner write none for it. 0: every audit and full refresh.")
    indicator_prune_interval: float = Field(
        600.0, gt=0, description="Seconds between two prunes of indicator samples past the retention.")

    # --- sync (desired keypairs, flavors, security groups) -----------------------------------------
    sync_audit_interval: float = Field(
        60.0, gt=0, description="Seconds between two drift audits of declared keypairs, flavors and security "
        "groups: one listing per site per kind (per owning user or project) compares them all, and only what "
        "drifted is written; a change behind Skyfleet's back is repaired within about this long.")
    sync_audit_concurrency: int = Field(
        64, ge=1, le=4096, description="Sites one drift audit reads at once (behind the priority lanes).")
    sync_converge_interval: float | None = Field(
        None, gt=0, description="Seconds between two converge passes over every declared resource: a task per "
        "site for identity objects, images, networks and private flavors' access lists, and for the sites of "
        "any kind whose binding is not in sync (failed, pending, a new site in the placement). Unset: five "
        "drift audit intervals (300 s by default).")

    sync_max_sets: int = Field(
        10, ge=1, le=1000, description="Resource sets one Kingbird os-sync request may carry; each makes one job "
        "(more is 400, naming this limit)."
    )

    # --- images ------------------------------------------------------------------------------------
    image_url_allow: str = Field(
        "", description="Comma-separated URL prefixes (http:// or https://) an image may be declared from; "
        "empty: URL sources are refused.")
    image_upload_max_bytes: int = Field(
        64 * 1024**3, ge=1, description="Largest image body PUT /v1/images/{ref}/file accepts, streamed to the "
        "seed site (never held whole).")
    image_target_bps: int = Field(
        0, ge=0, description="Bytes per second one process may send to one site's image service (0: no cap).")
    image_source_bps: int = Field(
        0, ge=0, description="Bytes per second one process may read from one image source (0: no cap).")

    # --- global quota -------------------------------------------------------------------------------
    quota_interval: float = Field(
        60.0, gt=0, description="Seconds between two quota rounds (read usage back, write site limits, collect)."
    )
    quota_full_read_interval: float = Field(
        3600.0, gt=0, description="A round reads only the projects a site says may have changed; every project is "
        "also read in full once per this many seconds (spread over the rounds), which bounds how long a change the "
        "hints cannot see (a deleted volume, a limit changed on the site) stays unseen."
    )

    # --- reconcile engine (tasks fanned out to sites) ----------------------------------------------
    engine_concurrency: int = Field(64, ge=1, le=4096, description="Tasks one process runs at once.")
    engine_per_site: int = Field(2, ge=1, le=64, description="Tasks in flight per site, fleet-wide.")
    engine_site_rate: float = Field(
        10.0, gt=0, description="Task starts per second and site, per process (token bucket)."
    )
    engine_site_burst: int = Field(5, ge=1, description="Task starts a site may take at once.")
    engine_lease_seconds: float = Field(
        30.0, ge=1, description="A leased task is taken by another worker when not renewed for this long."
    )
    engine_heartbeat_seconds: float = Field(
        2.0, gt=0, description="Seconds between two heartbeats of a worker (which also renew its leases)."
    )
    engine_worker_ttl: float = Field(
        6.0, gt=0, description="A worker whose heartbeat stopped this long is dead: its tasks are handed back "
        "at once, without waiting for their leases to expire."
    )
    engine_poll_interval: float = Field(
        2.0, gt=0, description="Seconds between two looks at the database when no wake-up comes."
    )
    engine_batch: int = Field(64, ge=1, le=1000, description="Tasks leased per database round trip.")
    task_retry: RetryPolicy = Field(default_factory=RetryPolicy,
                                    description="Backoff of temporary failures (JSON in the environment).")
    broker_url: str = Field(
        "",
        description="Celery broker that wakes workers (amqp://guest:guest@127.0.0.1:5672// or "
        "redis://127.0.0.1:6379/0); empty: workers only poll the database.",
    )

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value and value.split(":", 1)[0].split("+", 1)[0] not in {"sqlite", "postgresql", "mysql"}:
            raise ValueError("database_url must be a sqlite, postgresql or mysql SQLAlchemy URL")
        return value

    @field_validator("image_url_allow")
    @classmethod
    def _url_prefixes(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",") if part.strip()):
            if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", item):
                raise ValueError(f"{item!r} is not an http(s) URL prefix, e.g. https://images.example.net/")
        return value

    @field_validator("site_url_allow", "site_url_deny")
    @classmethod
    def _url_rules(cls, value: str) -> str:
        for item in (part.strip() for part in value.split(",")):
            if "/" in item:
                ipaddress.ip_network(item, strict=False)  # ValueError names the bad CIDR
            elif item and not re.fullmatch(r"[A-Za-z0-9.*?\[\]:_-]+", item):
                raise ValueError(f"{item!r} is neither a CIDR nor a host pattern")
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) and value.lower() in ("debug", "info", "warning", "error") \
            else value.lower() if isinstance(value, str) else value

    @field_validator("metrics_token")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if value.get_secret_value() and len(value.get_secret_value()) < 16:
            raise ValueError("metrics_token must be at least 16 characters (or empty)")
        return value

    @model_validator(mode="after")
    def _ttl_outlasts_heartbeats(self) -> Settings:
        if self.engine_worker_ttl < 2 * self.engine_heartbeat_seconds:
            raise ValueError("engine_worker_ttl must be at least two engine_heartbeat_seconds (a worker may "
                             "miss one beat without being called dead)")
        return self

    @model_validator(mode="after")
    def _intervals_fit_the_calendar(self) -> Settings:
        # The scheduler adds each interval to the clock: a value past a year would overflow the date
        # of the next run (1e12 s) and stop every periodic job, so it is refused here, at start.
        for name, value in self:
            if name.endswith("_interval") and value is not None and value > MAX_INTERVAL_SECONDS:
                raise ValueError(f"{name} must be at most {MAX_INTERVAL_SECONDS:.0f} seconds (366 days), "
                                 f"got {value:g}")
        return self

    @model_validator(mode="after")
    def _keystone_needs_home(self) -> Settings:
        if self.auth_mode == "keystone" and not self.home_auth_url:
            raise ValueError("auth_mode=keystone needs home_auth_url (SKYFLEET_HOME_AUTH_URL)")
        return self

    @property
    def effective_sync_converge_interval(self) -> float:
        """The converge pass's interval in force (five drift audit intervals unless set)."""
        return self.sync_converge_interval or 5 * self.sync_audit_interval

    @property
    def effective_database_url(self) -> str:
        """The database URL in force (SQLite under data_dir when none is configured)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'skyfleet.db').resolve()}"

    @property
    def key_file(self) -> Path:
        """Where generated Fernet keys are kept when none are configured."""
        return self.data_dir / "fernet.keys"


def is_loopback(host: str) -> bool:
    """True when binding to ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
