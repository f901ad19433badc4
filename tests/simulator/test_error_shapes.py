"""Error answers as real sites give them: keystone's Flask 404 and WWW-Authenticate, routers' webob 404s,
bad `limit` values, cinder's volume-type 404, neutron's router_route quota."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from skyfleet.simulator import Simulator

from .conftest import connect

JSON = {"Accept": "application/json"}
ZERO = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def esim() -> Iterator[Simulator]:
    with Simulator(1) as running:
        yield running


@pytest.fixture(scope="module")
def auth(esim: Simulator) -> dict[str, str]:
    return {**JSON, "X-Auth-Token": str(connect(esim, "site-0001").auth_token)}


def test_keystone_errors(esim: Simulator, auth: dict[str, str]) -> None:
    base = f"{esim.base_url}/site-0001/identity"
    unknown = requests.get(f"{base}/v3/nope", headers=auth, timeout=5)
    assert unknown.status_code == 404 and unknown.headers["Content-Type"].startswith("text/html")
    assert "<h1>Not Found</h1>" in unknown.text
    denied = requests.get(f"{base}/v3/projects", headers={**JSON, "X-Auth-Token": "bogus"}, timeout=5)
    assert denied.status_code == 401 and denied.headers["WWW-Authenticate"] == f'Keystone uri="{base}/v3"'
    assert denied.headers["Vary"] == "X-Auth-Token"


def test_unknown_urls_get_the_routers_plain_404(esim: Simulator, auth: dict[str, str]) -> None:
    site = f"{esim.base_url}/site-0001"
    project = connect(esim, "site-0001").current_project_id
    for url in (f"{site}/compute/v2.1/nope", f"{site}/volume/v3/{project}/nope"):
        resp = requests.get(url, headers=auth, timeout=5)
        assert resp.status_code == 404, url
        assert resp.json() == {"message": "The resource could not be found.<br /><br />\n\n\n",
                               "code": "404 Not Found", "title": "Not Found"}
        assert "OpenStack-API-Version" not in resp.headers
    known = requests.get(f"{site}/compute/v2.1/servers/{ZERO}", headers=auth, timeout=5)
    assert known.headers["Content-Type"] == "application/json; charset=UTF-8"
    vtype = requests.get(f"{site}/volume/v3/{project}/types/{ZERO}", headers=auth, timeout=5)
    assert vtype.json() == {"itemNotFound": {"code": 404, "message": f"Volume type {ZERO} could not be found."}}


def test_bad_limit_is_a_400_everywhere(esim: Simulator, auth: dict[str, str]) -> None:
    site = f"{esim.base_url}/site-0001"
    project = connect(esim, "site-0001").current_project_id
    expected = {
        f"{site}/compute/v2.1/servers?limit=abc": "badRequest",
        f"{site}/image/v2/images?limit=abc": "code",
        f"{site}/network/v2.0/networks?limit=abc": "NeutronError",
        f"{site}/volume/v3/{project}/volumes?limit=abc": "badRequest",
    }
    for url, key in expected.items():
        resp = requests.get(url, headers=auth, timeout=5)
        assert resp.status_code == 400 and key in resp.json(), url
    sort = requests.get(f"{site}/image/v2/images?sort_key=bogus", headers=auth, timeout=5)
    assert sort.status_code == 400 and "Invalid sort key: bogus" in sort.json()["message"]


def test_neutron_quota_lists_router_route(esim: Simulator, auth: dict[str, str]) -> None:
    quota = requests.get(f"{esim.base_url}/site-0001/network/v2.0/quotas/{ZERO}", headers=auth, timeout=5)
    assert quota.json()["quota"]["router_route"] == 30
