"""Observing the fleet in the dashboard (headless chromium, the live fleet of ``test_dashboard``): the
overview's filters (label, group, availability, name) go to GET /v1/sites and into the URL, so a shared
URL shows the same view; the tally counts what matches; a bad selector shows the API's 400 reason;
each site row and each service of a site page draws its API latency of the last hour as a sparkline;
the inventory search finds a resource by name, id or IP on every site, and a tenant finds its own only;
a domain admin signed in sees its own domain's declared identity and no fleet page.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import openstack
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from tests.e2e.conftest import problems
from tests.e2e.fleet import Fleet, keystone_token, rows_of, sign_in, wait_for
from tests.functional.conftest import site_auth

pytestmark = pytest.mark.e2e


def hash_params(driver: webdriver.Chrome) -> dict[str, list[str]]:
    fragment = urlsplit(driver.current_url).fragment
    return parse_qs(fragment.partition("?")[2])


def tally(driver: webdriver.Chrome) -> dict[str, str]:
    """The overview's counts, read in one script (a live redraw cannot leave a stale element)."""
    counts: dict[str, str] = driver.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#availability-counts li')].map("
        "(li) => [li.dataset.availability || 'total', li.textContent.trim().split(/\\s+/)[0]]))")
    return counts


def type_into(driver: webdriver.Chrome, field: str, text: str) -> None:
    """Replace a field's text as a user does (select all, type), so the page sees input events."""
    box = driver.find_element(By.ID, field)
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.BACKSPACE, *([text] if text else []))


def test_overview_filters_in_the_url_and_sparklines(fleet: Fleet, browser: webdriver.Chrome,
                                                    screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    with httpx.Client(base_url=fleet.url, headers={"X-Auth-Token": fleet.admin}, timeout=30) as api:
        assert api.patch("/v1/sites/e2e-2", json={"labels": {"tier": "core"}}).status_code == 200
    sign_in(browser, fleet.url, fleet.admin)
    sites = wait_for(lambda: len(rows_of(browser, "Sites (")) == 3 and rows_of(browser, "Sites ("), "the sites")
    # a sparkline of each site's API latency (the fixture waited for an audit's samples)
    lines = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#site-grid svg.spark"), "the sparklines")
    labels = sorted(line.get_attribute("aria-label") for line in lines)
    assert len(lines) == 3 and all(" over the last hour: " in text and " ms, min " in text for text in labels), labels
    assert labels[0].startswith("API latency of e2e-0"), labels
    assert all(int(line.get_attribute("data-points")) >= 1 for line in lines)
    assert browser.find_elements(By.CSS_SELECTOR, "#site-grid svg.spark polyline")
    assert sites["e2e-2"][2] == "tier=core"
    screenshot(browser, "overview-sparklines")

    # label, group, name: each goes to the API, into the URL, and the tally counts the matches
    type_into(browser, "site-label", "tier=edge")
    wait_for(lambda: set(rows_of(browser, "Sites (")) == {"e2e-0", "e2e-1"}, "the tier=edge sites")
    assert tally(browser)["total"] == "2" and tally(browser)["online"] == "2"
    type_into(browser, "site-group", "eu")
    wait_for(lambda: set(rows_of(browser, "Sites (")) == {"e2e-1"}, "the tier=edge sites of group eu")
    assert hash_params(browser) == {"label": ["tier=edge"], "group": ["eu"]}
    type_into(browser, "site-label", "")
    type_into(browser, "site-filter", "e2e-2")
    wait_for(lambda: set(rows_of(browser, "Sites (")) == {"e2e-2"}, "the eu site named e2e-2")
    assert hash_params(browser) == {"group": ["eu"], "q": ["e2e-2"]}
    assert tally(browser)["total"] == "1"
    # availability: none is offline, the table says so and the tally counts nothing
    type_into(browser, "site-filter", "")
    browser.find_element(By.CSS_SELECTOR, "#site-availability option[value=offline]").click()
    wait_for(lambda: "No site matches." in browser.find_element(By.ID, "site-grid").text, "no offline site")
    assert tally(browser)["total"] == "0" and hash_params(browser) == {"group": ["eu"], "availability": ["offline"]}
    screenshot(browser, "overview-filtered")

    # the URL is the view: opened afresh (a colleague's browser), the same filters and the same rows
    shared = f"{fleet.url}/ui/#/overview?group=eu&availability=online&label=tier%21%3Dcore"
    browser.get("about:blank")
    browser.get(shared)
    wait_for(lambda: set(rows_of(browser, "Sites (")) == {"e2e-1"}, "the shared view")
    assert browser.find_element(By.ID, "site-group").get_attribute("value") == "eu"
    assert browser.find_element(By.ID, "site-label").get_attribute("value") == "tier!=core"
    assert browser.find_element(By.ID, "site-availability").get_attribute("value") == "online"
    # a selector the API refuses: its 400 reason on the page, no table of stale rows
    type_into(browser, "site-label", "tier=a b")
    alert = WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR,
                                                                              "#site-filter-problem .error")))
    assert "400" in alert.text and "bad label selector term" in alert.text, alert.text
    assert rows_of(browser, "Sites (") == {"No site matches.": []}

    # the site page: a sparkline per service, from api.<service>.latency_ms
    browser.get(f"{fleet.url}/ui/#/site/e2e-1")
    services = wait_for(lambda: rows_of(browser, "Services in the site's catalog"), "the site's services")
    compute = browser.find_element(
        By.XPATH, "//table[starts-with(caption, 'Services')]//tr[th='compute']//*[local-name()='svg']")
    assert compute.get_attribute("aria-label").startswith("compute API latency over the last hour: "), services
    trends = browser.find_elements(By.XPATH, "//table[starts-with(caption, 'Indicators')]//*[local-name()='svg']")
    assert trends, "a sparkline per indicator series"
    screenshot(browser, "site-sparklines")
    assert problems(browser, allowed=("status of 400",)) == []


def test_inventory_search_by_name_id_and_ip(fleet: Fleet, browser: webdriver.Chrome,
                                            screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    home = fleet.sim.fleet.get(fleet.sim.site_names()[0]).keystone
    where = fleet.sim.site_names()[2]  # registered as e2e-1
    n = uuid.uuid4().hex[:6]
    demo = openstack.connect(load_yaml_config=False, load_envvars=False, **fleet.sim.cloud(where, user="demo"))
    admin = openstack.connect(load_yaml_config=False, load_envvars=False, **fleet.sim.cloud(where))
    mine = demo.network.create_network(name=f"find-{n}-mine")
    demo.network.create_subnet(network_id=mine.id, cidr="10.77.0.0/24", ip_version=4, name=f"find-{n}-sub")
    port = demo.network.create_port(network_id=mine.id, name=f"find-{n}-port")
    ip = port.fixed_ips[0]["ip_address"]
    admins = admin.network.create_network(name=f"find-{n}-admin")
    with httpx.Client(base_url=fleet.url, headers={"X-Auth-Token": fleet.admin}, timeout=30) as api:
        # the site shares nothing with the home Keystone: the tenant's project there is mapped
        assert api.put(f"/v1/projects/{home.demo_project}/mappings/e2e-1",
                       json={"remote_project_id": fleet.sim.fleet.get(where).keystone.demo_project}).status_code == 200
        assert api.post("/v1/inventory/refresh", params={"full": "true"}).status_code == 202
        wait_for(lambda: len(api.get("/v1/inventory/networks", params={"q": f"find-{n}"}).json()["items"]) == 2
                 and api.get("/v1/inventory/ports", params={"q": ip, "site": "e2e-1"}).json()["items"],
                 "the new resources in the global view", timeout=60)

    sign_in(browser, fleet.url, fleet.tenant)
    browser.find_element(By.CSS_SELECTOR, "#nav a[data-view=inventory]").click()
    WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.ID, "inv-q"))).send_keys(f"find-{n}")
    found = wait_for(lambda: rows_of(browser, "Resources found (") if f"find-{n}-port" in rows_of(
        browser, "Resources found (") else None, "the tenant's resources")
    # its network, subnet and port on e2e-1; not the admin project's network on the same site
    assert set(found) == {f"find-{n}-mine", f"find-{n}-sub", f"find-{n}-port"}, found
    assert found[f"find-{n}-mine"][:2] == ["networks", "e2e-1"] and found[f"find-{n}-port"][4] == ip, found
    assert hash_params(browser) == {"q": [f"find-{n}"]}
    screenshot(browser, "inventory-tenant")
    # by IP, in one kind, and by id prefix
    type_into(browser, "inv-q", ip)
    wait_for(lambda: set(rows_of(browser, "Resources found (")) == {f"find-{n}-port"}, "the port by its IP")
    browser.find_element(By.CSS_SELECTOR, "#inv-kind option[value=networks]").click()
    type_into(browser, "inv-q", mine.id[:8])
    wait_for(lambda: set(rows_of(browser, "Resources found (")) == {f"find-{n}-mine"}, "the network by its id")
    assert hash_params(browser) == {"q": [mine.id[:8]], "kind": ["networks"]}
    type_into(browser, "inv-q", admins.id[:8])
    wait_for(lambda: rows_of(browser, "Resources found (") == {"Nothing found.": []}, "not another project's")
    assert f"find-{n}-admin" not in browser.page_source
    assert problems(browser, allowed=("/v1/sites", "status of 403")) == []

    # a fleet admin finds both networks; a shared URL with a site filter
    browser.find_element(By.ID, "logout").click()
    sign_in(browser, fleet.url, fleet.admin)
    browser.get(f"{fleet.url}/ui/#/inventory?q=find-{n}&kind=networks&site=e2e-1")
    found = wait_for(lambda: len(rows_of(browser, "Resources found (")) == 2 and rows_of(browser, "Resources found ("),
                     "both networks for the admin")
    assert set(found) == {f"find-{n}-mine", f"find-{n}-admin"}, found
    browser.get("about:blank")
    browser.get(f"{fleet.url}/ui/#/inventory?q=find-{n}&site=no-such-site")
    alert = WebDriverWait(browser, 15).until(ec.visibility_of_element_located(
        (By.CSS_SELECTOR, "#inventory-results .error")))
    assert "404" in alert.text and "no-such-site" in alert.text, alert.text
    refusals = browser.find_elements(By.CSS_SELECTOR, "#inventory-results .error")
    assert len(refusals) == 1, "one refusal, not one per kind"
    screenshot(browser, "inventory-admin")
    assert problems(browser, allowed=("status of 404",)) == []


def test_a_domain_admin_sees_its_domains_identity_and_no_fleet(
        sim: Simulator, runtime_factory: Callable[..., Runtime], live_server: Callable[..., str],
        browser: webdriver.Chrome, screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    home = sim.state(sim.site_names()[0]).keystone
    n = uuid.uuid4().hex[:6]
    acme, beta = f"acme{n}", f"beta{n}"
    for name in (acme, beta):
        home.add_domain(name)
    did = home.domain_by_name(acme)["id"]  # type: ignore[index]
    uid = home.add_user(f"dana{n}", "dana-pass", None, domain_id=did)
    home.scoped_grants.add(("domains", did, "users", uid, home.role_id("admin"), False))
    auth = site_auth(sim, sim.site_names()[0])
    url = live_server(runtime_factory(None, None, auth_mode="keystone", home_auth_url=auth["auth_url"],
                                      home_username=auth["username"], home_password=auth["password"],
                                      home_project_name=auth["project_name"]))
    admin = {"X-Auth-Token": keystone_token(auth["auth_url"], "admin", auth["password"], "admin")}
    dana_token = ks_session.Session(auth=v3.Password(
        auth_url=auth["auth_url"], username=f"dana{n}", password="dana-pass", user_domain_name=acme,
        domain_name=acme)).get_token()
    with httpx.Client(base_url=url, timeout=30) as api:
        for name in (acme, beta):
            assert api.post("/v1/identity/domains", json={"spec": {"name": name}}, headers=admin).status_code == 202
        assert api.post("/v1/identity/projects", json={"spec": {"name": f"bp{n}", "domain": beta}},
                        headers=admin).status_code == 202
        dana = {"X-Auth-Token": dana_token}
        for path, spec in (("projects", {"name": f"web{n}", "domain": acme}),
                           ("users", {"name": f"wendy{n}", "domain": acme, "default_project": f"web{n}"})):
            made = api.post(f"/v1/identity/{path}", json={"spec": spec}, headers=dana)
            assert made.status_code == 202, made.text
        grant = api.put("/v1/identity/role-assignments", headers=dana, json={"spec": {
            "user": f"wendy{n}", "project": f"web{n}", "role": "member", "domain": acme}})
        assert grant.status_code in (200, 202), grant.text

    sign_in(browser, url, dana_token)
    projects = wait_for(lambda: rows_of(browser, "Projects declared in domain"), "the domain's projects")
    assert set(projects) == {f"web{n}"} and projects[f"web{n}"][0] == acme, "its own domain's only, not bp"
    assert set(rows_of(browser, "Users declared in domain")) == {f"wendy{n}"}
    [(_, assignment)] = rows_of(browser, "Role assignments declared in domain").items()
    assert assignment[:3] == [f"user wendy{n}", "member", f"project web{n}"], assignment
    assert browser.find_element(By.ID, "who").text == f"dana{n} · admin of domain {acme}"
    offered = [a.get_attribute("data-view") for a in browser.find_elements(By.CSS_SELECTOR, "#nav a")
               if a.is_displayed()]
    assert offered == ["identity"], f"no fleet admin page is offered: {offered}"
    screenshot(browser, "domain-admin-identity")
    # a fleet page by URL: the identity view again, and no call for fleet data was made
    browser.get(f"{url}/ui/#/overview")
    wait_for(lambda: rows_of(browser, "Projects declared in domain"), "the identity view again")
    assert not browser.find_elements(By.ID, "site-grid") and beta not in browser.page_source
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map((e) => e.name)")
    assert not [u for u in fetched if "/v1/sites" in u or "/v1/inventory" in u], fetched
    assert problems(browser) == []

    # a fleet admin's identity view: every domain's declarations
    browser.find_element(By.ID, "logout").click()
    sign_in(browser, url, admin["X-Auth-Token"])
    browser.get(f"{url}/ui/#/identity")
    everything = wait_for(lambda: len(found := rows_of(browser, "Projects declared")) >= 2 and found, "all projects")
    assert {f"web{n}", f"bp{n}"} <= set(everything)
