"""One user name in two domains on the two real sites (each with its own Keystone): ``alice`` of
domain Red and ``alice`` of domain Blue, each with her own password and a ``member`` grant on her
own domain's project, are two declarations. Each logs in on both sites with her own password; the
Red one is then purged through ``?domain=`` and the Blue one still logs in. Everything is purged
through the API, and whatever is left is swept by hand.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from skyfleet.api.runtime import Runtime
from tests.realstack.support import connect, fleet_api, token, wait_for
from tests.realstack.test_identity_real import SITES

pytestmark = pytest.mark.realstack


@pytest.fixture
def names() -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {"red": f"red-{tag}", "blue": f"blue-{tag}", "user": f"alice-{tag}", "project": f"lab-{tag}"}


@pytest.fixture
def api(runtime_factory: Callable[..., Runtime], clouds: dict[str, Any],
        names: dict[str, str]) -> Iterator[tuple[TestClient, dict[str, str]]]:
    home = clouds["site1"]["auth"]
    try:
        with fleet_api(runtime_factory, clouds, SITES, site_timeout=30, audit_interval=5,
                       sync_audit_interval=5) as client:
            yield client, {"X-Auth-Token": token(home)}
    finally:
        for site in SITES:
            idn = connect(clouds[site]["auth"]).identity
            for key in ("red", "blue"):
                domain = idn.find_domain(names[key], ignore_missing=True)
                if domain is not None:
                    idn.update_domain(domain, enabled=False)
                    idn.delete_domain(domain, ignore_missing=True)  # its project and user go with it


def logs_in(clouds: dict[str, Any], site: str, names: dict[str, str], domain: str) -> bool:
    auth = {**clouds[site]["auth"], "username": names["user"], "password": f"Pass-of-{domain}-1",
            "project_name": names["project"], "user_domain_name": domain, "project_domain_name": domain}
    try:
        conn = connect(auth)
        return "member" in conn.session.auth.get_access(conn.session).role_names
    except Exception:  # any refusal means "not (or no longer) so"
        return False


def test_one_user_name_in_two_domains_on_both_real_sites(
        api: tuple[TestClient, dict[str, str]], clouds: dict[str, Any], names: dict[str, str]) -> None:
    client, headers = api
    red, blue, user, project = names["red"], names["blue"], names["user"], names["project"]
    refs: list[tuple[str, dict[str, str]]] = []
    for domain in (red, blue):
        assert client.post("/v1/identity/domains", json={"spec": {"name": domain}}, headers=headers).status_code == 202
        refs.append((f"domains/{domain}", {}))
        for path, spec in (("projects", {"name": project}),
                           ("users", {"name": user, "password": f"Pass-of-{domain}-1"})):
            made = client.post(f"/v1/identity/{path}", json={"spec": {**spec, "domain": domain}}, headers=headers)
            assert made.status_code == 202, made.text
            refs.append((f"{path}/{spec['name']}", {"domain": domain}))
        put = client.put("/v1/identity/role-assignments", headers=headers,
                         json={"spec": {"user": user, "project": project, "role": "member", "domain": domain}})
        assert put.status_code == 202, put.text
        refs.append((f"role-assignments/{put.json()['name']}", {}))
    assert wait_for(lambda: all(logs_in(clouds, s, names, d) for s in SITES for d in (red, blue))), \
        [client.get(f"/v1/identity/{ref}", params=q, headers=headers).text for ref, q in refs]
    assert client.get(f"/v1/identity/users/{user}", headers=headers).status_code == 409

    gone = client.delete(f"/v1/identity/users/{user}", params={"purge": True, "domain": red}, headers=headers)
    assert gone.status_code == 202, gone.text
    assert wait_for(lambda: client.get(f"/v1/identity/users/{user}", params={"domain": red},
                                       headers=headers).status_code == 404, 120)
    for site in SITES:
        idn = connect(clouds[site]["auth"]).identity
        red_id = idn.find_domain(red).id
        assert idn.find_user(user, domain_id=red_id, ignore_missing=True) is None, site
        assert logs_in(clouds, site, names, blue), site

    for ref, query in reversed(refs):
        if ref == f"users/{user}" and query.get("domain") == red:
            continue
        client.delete(f"/v1/identity/{ref}", params={"purge": True, **query}, headers=headers)
    assert wait_for(lambda: all(client.get(f"/v1/identity/{ref}", params=q, headers=headers).status_code == 404
                                for ref, q in refs), 180)
    for site in SITES:
        for domain in (red, blue):
            assert connect(clouds[site]["auth"]).identity.find_domain(domain, ignore_missing=True) is None, site
