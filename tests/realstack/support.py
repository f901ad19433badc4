"""What the real-site tests share: a connection and a token as some user, Skyfleet serving with site1's
Keystone as its home and the real sites registered, and waiting as a user waits (polling the outcome
every 2 s, never a call that moves Skyfleet's work along)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import openstack
from fastapi.testclient import TestClient
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from skyfleet.api.app import create_app


def connect(auth: dict[str, Any]) -> Any:
    return openstack.connect(auth=auth, region_name="RegionOne", auth_type="password", load_yaml_config=False,
                             load_envvars=False)


def token(auth: dict[str, Any]) -> str:
    plugin = v3.Password(**{k: auth[k] for k in ("auth_url", "username", "password", "project_name",
                                                  "user_domain_name", "project_domain_name")})
    value: str = ks_session.Session(auth=plugin).get_token()
    return value


def wait_for(check: Callable[[], bool], seconds: float = 180) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(2)
    return False


@contextmanager
def fleet_api(runtime_factory: Callable[..., Any], clouds: dict[str, Any], sites: Sequence[str] | Mapping[str, str],
              **settings: Any) -> Iterator[TestClient]:
    """Skyfleet with site1's Keystone as its home Keystone, its own workers running with ``settings``, and
    ``sites`` registered by a fleet admin (names, or name -> region; RegionOne by default)."""
    home = clouds["site1"]["auth"]
    rt = runtime_factory(None, None, auth_mode="keystone", home_auth_url=home["auth_url"],
                         home_username=home["username"], home_password=home["password"],
                         home_project_name=home["project_name"], **settings)
    regions = dict(sites) if isinstance(sites, Mapping) else dict.fromkeys(sites, "RegionOne")
    with TestClient(create_app(rt, start_workers=True)) as client:
        admin_token = {"X-Auth-Token": token(home)}
        for name, region in regions.items():
            auth = {**clouds[name]["auth"], "region_name": region, "interface": "public"}
            created = client.post("/v1/sites", json={"name": name, "auth": auth}, headers=admin_token)
            assert created.status_code == 201, created.text
        yield client


def tidy(call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    """A clean-up call after a test: a failure is reported, never raised. Another client (Skyfleet's own
    purge, say) may be deleting the same thing at that moment, and clean-up must not replace the test's own
    outcome with its error."""
    try:
        call(*args, **kwargs)
    except openstack.exceptions.SDKException as exc:
        print(f"clean-up {getattr(call, '__name__', call)} failed: {exc}")
