"""Skyfleet settings, grouped by concern, each with a default and a description.

Settings come from environment variables (prefix ``SKYFLEET_``) or an optional ``.env`` file,
and are validated once at start-up (``skyfleet config check`` shows the result).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

AuthMode = Literal["keystone", "noauth"]


class RetryPolicy(BaseModel):
    """Backoff of a task whose site call failed temporarily (tenacity's exponential-with-jitter, as data).

    Attempt n (1-based) that fails waits ``min(max_delay, initial * multiplier ** (n - 1))`` plus a random
    ``0..jitter`` fraction of that; after ``max_attempts`` the task fails with the site's last error.
    """

    model_config = ConfigDict(extra="forbid")

    initial: float = Field(1.0, gt=0, description="Seconds before the first retry.")
    multiplier: float = Field(2.0, ge=1, description="Growth of the delay per attempt.")
    max_delay: float = Field(300.0, gt=0, description="Cap of one delay, in seconds.")
    jitter: float = Field(0.5, ge=0, le=1, description="Random extra delay, as a fraction of the delay.")
    max_attempts: int = Field(6, ge=1, le=1000, description="Attempts before the task fails.")


class Settings(BaseSettings):
    """Everything Skyfleet can be configured with."""

    model_config = SettingsConfigDict(env_prefix="SKYFLEET_", env_file=".env", extra="ignore")

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
    home_auth_url: str = Field("", description="Keystone v3 URL that authenticates Skyfleet's users.")
    home_username: str = Field("", description="Service user used to validate tokens.")
    home_password: SecretStr = Field(SecretStr(""), description="Password of the service user.")
    home_project_name: str = Field("admin", description="Project of the service user.")
    home_user_domain_name: str = Field("Default", description="Domain of the service user.")
    home_project_domain_name: str = Field("Default", description="Domain of the service project.")
    home_region_name: str = Field("", description="Region of the home Keystone (empty: any).")
    home_verify: bool = Field(True, description="Verify the home Keystone's TLS certificate.")
    token_cache_seconds: float = Field(60.0, ge=0, description="How long a validated token is trusted.")
    admin_role: str = Field("admin", description="Keystone role that makes a user a fleet admin.")

    # --- sites and health ------------------------------------------------------------------------
    site_timeout: float = Field(10.0, gt=0, description="Timeout of one call to a site, in seconds.")
    audit_interval: float = Field(60.0, gt=0, description="Seconds between two health audits.")
    audit_concurrency: int = Field(64, ge=1, le=4096, description="Sites probed at once by one process.")
    offline_after_misses: int = Field(2, ge=1, description="Consecutive failed audits before offline.")
    audit_shards: int = Field(
        1, ge=1, le=1024, description="Split each health audit into this many shards, each claimed on its own, "
        "so that several processes share one cycle (1 = one process audits every site).")
    workers_enabled: bool = Field(True, description="Run the periodic workers inside `skyfleet serve`.")
    periodic_jobs: bool = Field(
        True, description="Run the claimed periodic jobs (audits, refreshes, quota rounds) in this process; "
        "off for processes dedicated to tasks.")

    # --- inventory (the global view) -----------------------------------------------------------------
    inventory_interval: float = Field(30.0, gt=0, description="Seconds between incremental inventory refreshes.")
    inventory_full_interval: float = Field(600.0, gt=0, description="Seconds between full inventory refreshes.")
    inventory_concurrency: int = Field(64, ge=1, le=4096, description="Sites read at once by an inventory refresh.")

    # --- sync (desired keypairs, flavors, security groups) -----------------------------------------
    sync_audit_interval: float = Field(
        300.0, gt=0, description="Seconds between two drift audits of desired keypairs, flavors, security groups."
    )

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

    @model_validator(mode="after")
    def _keystone_needs_home(self) -> Settings:
        if self.auth_mode == "keystone" and not self.home_auth_url:
            raise ValueError("auth_mode=keystone needs home_auth_url (SKYFLEET_HOME_AUTH_URL)")
        return self

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
