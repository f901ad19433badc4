"""The dashboard in headless chromium against a live Skyfleet (keystone mode, workers running) over
simulated sites: a fleet admin sees every site with its availability and a site registered through the
API arrives in the live events view without a reload; a tenant gets the forbidden message for the
sites and sees its own image and server, not another tenant's; no CSP violation or script error."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import openstack
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from skyfleet.simulator.state import DEMO_PASSWORD
from tests.e2e.conftest import problems
from tests.e2e.fleet import (
    Fleet,
    assert_no_token_in_reach_of_scripts,
    rows_of,
    sign_in,
    sign_in_with_password,
    wait_for,
)
from tests.functional.conftest import site_auth
from tests.functional.test_images_on_simulator import upload

pytestmark = pytest.mark.e2e


def test_admin_sees_the_fleet_and_live_events(fleet: Fleet, browser: webdriver.Chrome,
                                              screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    sign_in(browser, fleet.url, fleet.admin)
    sites = wait_for(lambda: rows_of(browser, "Sites ("), "the sites table")
    assert set(sites) == set(fleet.sites), sites
    assert all(cells[0] == "online" for cells in sites.values()), sites
    assert sites["e2e-0"][1] == "us" and sites["e2e-1"][1] == "eu"
    bars = browser.find_elements(By.CSS_SELECTOR, "table meter[aria-label^='vCPUs']")
    assert len(bars) == len(fleet.sites), "a vCPU bar per site, from the inventory's capacity"
    assert all(float(b.get_attribute("max")) > 0 for b in bars)
    tally = browser.find_element(By.CSS_SELECTOR, "#availability-counts li[data-availability=online]").text
    assert tally.startswith(str(len(fleet.sites))), tally
    screenshot(browser, "overview-1280")

    # the site page: its services from the audit
    browser.find_element(By.LINK_TEXT, "e2e-1").click()
    services = wait_for(lambda: rows_of(browser, "Services in the site's catalog"), "the site's services")
    assert {"identity", "compute", "image"} <= set(services) and services["compute"][0] == "ok", services
    # and its indicators (the fixture waited for an audit's samples)
    series = wait_for(lambda: rows_of(browser, "Indicators of this site"), "the site's indicators")
    assert {"api.compute.latency_ms", "audit.duration_ms"} <= set(series), series
    screenshot(browser, "site")

    # live events: a site registered through the API shows up without a reload
    browser.find_element(By.CSS_SELECTOR, "#nav a[data-view=events]").click()
    WebDriverWait(browser, 15).until(ec.text_to_be_present_in_element((By.ID, "stream-status"), "live: connected"))
    browser.execute_script("window.__sameDocument = 42")
    with httpx.Client(base_url=fleet.url, headers={"X-Auth-Token": fleet.admin}, timeout=30) as api:
        made = api.post("/v1/sites", json={"name": "e2e-late", "auth": site_auth(fleet.sim, fleet.sim.site_names()[4])})
        assert made.status_code == 201, made.text
    live = WebDriverWait(browser, 20).until(ec.text_to_be_present_in_element((By.ID, "live-events"),
                                                                           "site e2e-late registered"))
    assert live and browser.execute_script("return window.__sameDocument") == 42, "the page was reloaded"
    screenshot(browser, "events-live")

    # a narrow screen: nothing wider than the window but the tables' own scroll regions
    browser.get(f"{fleet.url}/ui/#/overview")
    browser.set_window_size(390, 844)
    wait_for(lambda: rows_of(browser, "Sites ("), "the sites table on a narrow screen")
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page is {overflow}px wider than a 390px screen"
    screenshot(browser, "overview-narrow")
    assert problems(browser) == []


def test_a_tenant_sees_its_own_and_no_admin_data(fleet: Fleet, browser: webdriver.Chrome,
                                                 screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    site = fleet.sim.site_names()[2]  # registered as e2e-1
    source = upload(fleet.sim, site, "e2e-base")
    tenant_site = openstack.connect(load_yaml_config=False, load_envvars=False, **fleet.sim.cloud(site, user="demo"))
    own = tenant_site.image.post("/images", json={"name": "e2e-own", "disk_format": "raw",
                                                  "container_format": "bare"}).json()["id"]
    assert tenant_site.image.put(f"/images/{own}/file", data=b"x" * 1024,
                                 headers={"Content-Type": "application/octet-stream"}).status_code == 204
    admin_site = openstack.connect(load_yaml_config=False, load_envvars=False, **fleet.sim.cloud(site))
    public = admin_site.image.post("/images", json={"name": "e2e-pub", "disk_format": "raw", "container_format": "bare",
                                                    "visibility": "public"}).json()["id"]
    assert admin_site.image.put(f"/images/{public}/file", data=b"p" * 1024,
                                headers={"Content-Type": "application/octet-stream"}).status_code == 204
    mine, theirs = f"mine-{uuid.uuid4().hex[:6]}", f"theirs-{uuid.uuid4().hex[:6]}"
    for token, name in ((fleet.tenant, mine), (fleet.other, theirs)):
        with httpx.Client(base_url=fleet.url, headers={"X-Auth-Token": token}, timeout=30) as api:
            image_id = own if token == fleet.tenant else source
            made = api.post("/v1/images", json={"name": name, "mode": "lazy",
                                                "source": {"site": "e2e-1", "image_id": image_id}})
            assert made.status_code == 202, made.text
            if token == fleet.tenant:  # a copy on another site: a binding with its status
                copied = api.post(f"/v1/images/{name}/sites/e2e-2")
                assert copied.status_code == 202, copied.text
            boot = {"name": f"vm-{name}", "flavor": "m1.tiny", "image": "e2e-pub",  # public: both may boot it
                    "placement": {"site": "e2e-1", "availability_zone": "nova"}}
            # placement decides from the global view: the image is bootable once a full refresh saw it
            wait_for(lambda: api.post("/v1/servers", params={"dry_run": "true"}, json=boot).json().get(
                "plan", {}).get("assignments") != [], "the image in the global view")
            booted = api.post("/v1/servers", json=boot)
            assert booted.status_code == 202, booted.text

    with httpx.Client(base_url=fleet.url, headers={"X-Auth-Token": fleet.tenant}, timeout=30) as api:
        wait_for(lambda: [s["status"] for s in api.get("/v1/servers").json()["servers"]] == ["active"],
                 "the tenant's server active")
        wait_for(lambda: [b["status"] for b in api.get(f"/v1/images/{mine}").json()["bindings"]] == ["in-sync"],
                 "the tenant's image copied")
    sign_in(browser, fleet.url, fleet.tenant)
    alert = WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#view .error")))
    assert "The list of sites (fleet admins only): not available to your token." in alert.text, alert.text
    assert "403" in alert.text and "request id req-" in alert.text, alert.text
    assert not any(name in browser.page_source for name in fleet.sites), "a tenant sees site names"
    screenshot(browser, "tenant-overview")

    browser.get(f"{fleet.url}/ui/#/images")
    images = wait_for(lambda: rows_of(browser, "Images, with their"), "the tenant's images")
    assert mine in images and theirs not in images, images
    assert images[mine][3] == "e2e-2 in-sync", images  # the copy's site and binding status
    screenshot(browser, "tenant-images")

    browser.get(f"{fleet.url}/ui/#/servers")
    servers = wait_for(lambda: rows_of(browser, "Servers, with their"), "the tenant's servers")
    assert f"vm-{mine}" in servers and f"vm-{theirs}" not in servers, servers
    assert servers[f"vm-{mine}"][:2] == ["active", "e2e-1"], servers
    screenshot(browser, "tenant-servers")

    browser.get(f"{fleet.url}/ui/#/operations")
    operations = wait_for(lambda: rows_of(browser, "Operations, newest first"), "the tenant's operations")
    # its own image sync and boot only: the other tenant's two operations are not listed
    assert sorted(cells[0] for cells in operations.values()) == ["server.boot", "sync.image"], operations
    bars = browser.find_elements(By.CSS_SELECTOR, "table progress")
    assert len(bars) == len(operations) and all(b.get_attribute("max") for b in bars)
    screenshot(browser, "tenant-operations")

    browser.get(f"{fleet.url}/ui/#/site/e2e-1")  # an admin page by URL: the API refuses, the page says so
    alert = WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#view .error")))
    assert "403" in alert.text and "request id" in alert.text
    # the console reports the refused fetches of admin data as errors; nothing else may appear
    assert problems(browser, allowed=("/v1/sites", "status of 403")) == []


def test_noauth_on_loopback_needs_no_token(sim: Simulator, runtime_factory: Callable[..., Runtime],
                                           live_server: Callable[..., str], browser: webdriver.Chrome,
                                           screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    url = live_server(runtime_factory(None, None, audit_interval=2), workers=True)  # noauth: fleet admin
    with httpx.Client(base_url=url, timeout=30) as api:
        assert api.post("/v1/sites", json={"name": "solo", "auth": site_auth(sim, sim.site_names()[5])}
                        ).status_code == 201
    browser.get(f"{url}/ui/")
    sites = wait_for(lambda: rows_of(browser, "Sites ("), "the sites table without signing in")
    assert "solo" in sites and not browser.find_element(By.ID, "login-panel").is_displayed()
    assert "auth: noauth" in browser.find_element(By.ID, "version").text
    screenshot(browser, "noauth-overview")
    assert problems(browser) == []


def test_sign_in_with_a_user_name_and_password(sim: Simulator, runtime_factory: Callable[..., Runtime],
                                               live_server: Callable[..., str], browser: webdriver.Chrome,
                                               screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    auth = site_auth(sim, sim.site_names()[0])
    url = live_server(runtime_factory(None, None, auth_mode="keystone", home_auth_url=auth["auth_url"],
                                      home_username=auth["username"], home_password=auth["password"],
                                      home_project_name=auth["project_name"]))
    browser.get(f"{url}/ui/")
    user = WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.ID, "signin-user")))
    assert browser.switch_to.active_element == user, "the sign-in form has the focus"
    fields = {"signin-user": "demo", "signin-password": "wrong-password-e2e", "signin-project": "demo"}
    for field, value in fields.items():
        browser.find_element(By.ID, field).send_keys(value)
    assert browser.find_element(By.ID, "signin-domain").get_attribute("value") == "Default"
    browser.find_element(By.CSS_SELECTOR, "#password-login button[type=submit]").click()
    alert = WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#login-error .error")))
    assert "401" in alert.text and "refused these credentials" in alert.text, alert.text
    assert browser.find_element(By.ID, "signin-password").get_attribute("value") == "", "the password is not kept"
    assert browser.switch_to.active_element.get_attribute("id") == "signin-password", "ready to type it again"
    screenshot(browser, "password-refused")

    browser.find_element(By.ID, "signin-password").send_keys(DEMO_PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "#password-login button[type=submit]").click()
    WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#nav")))
    assert browser.find_element(By.ID, "who").text == "demo · demo"
    session = assert_no_token_in_reach_of_scripts(browser)
    assert DEMO_PASSWORD not in browser.current_url and DEMO_PASSWORD not in browser.page_source
    with httpx.Client(base_url=url, cookies={"skyfleet_session": session["value"]}, timeout=30) as api:
        assert api.get("/v1/events?limit=1").status_code == 200, "the browser's cookie is a session Skyfleet accepts"
        assert api.post("/v1/keypairs", json={}).status_code == 403, "a change without the CSRF token is refused"
    # the tenant's overview, signed in with the password: the live stream (EventSource, cookie), no site list
    alert = WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#view .error")))
    assert "fleet admins only" in alert.text
    screenshot(browser, "password-signed-in")
    browser.find_element(By.CSS_SELECTOR, "#nav a[data-view=events]").click()
    WebDriverWait(browser, 15).until(ec.text_to_be_present_in_element((By.ID, "stream-status"), "live: connected"))
    # a reload keeps the session (the cookie), and asks the server who signed in
    browser.refresh()
    WebDriverWait(browser, 15).until(ec.text_to_be_present_in_element((By.ID, "who"), "demo · demo"))
    WebDriverWait(browser, 15).until(ec.text_to_be_present_in_element((By.ID, "stream-status"), "live: connected"))
    browser.find_element(By.ID, "logout").click()
    WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.ID, "signin-user")))
    left = {c["name"] for c in browser.get_cookies()}
    assert not left & {"skyfleet_session", "skyfleet_csrf"}, f"sign-out clears the cookies: {left}"
    assert browser.find_element(By.ID, "who").text == ""
    with httpx.Client(base_url=url, cookies={"skyfleet_session": session["value"]}, timeout=30) as api:
        assert api.get("/v1/events?limit=1").status_code == 401, "sign-out ended the session on the server"
    browser.refresh()  # and a reload finds nobody signed in
    WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.ID, "signin-user")))
    assert problems(browser, allowed=("/v1/sites", "status of 403", "/v1/auth/session", "status of 401")) == []


def test_quota_rollout_and_map_views(fleet: Fleet, browser: webdriver.Chrome,
                                     screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    home = fleet.sim.fleet.get(fleet.sim.site_names()[0]).keystone
    source_site = fleet.sim.site_names()[1]  # registered as e2e-0
    image = upload(fleet.sim, source_site, "e2e-roll")
    with httpx.Client(base_url=fleet.url, headers={"X-Auth-Token": fleet.admin}, timeout=30) as api:
        for name, where in (("e2e-0", {"latitude": 48.85, "longitude": 2.35}),
                            ("e2e-1", {"latitude": -33.87, "longitude": 151.21})):
            assert api.patch(f"/v1/sites/{name}", json={"location": where}).status_code == 200
        quota = f"/v1/quotas/{home.demo_project}"
        for index, name in enumerate(fleet.sim.site_names()[1:4]):  # the tenant's project on each site
            remote = fleet.sim.fleet.get(name).keystone.demo_project
            assert api.put(f"/v1/projects/{home.demo_project}/mappings/e2e-{index}",
                           json={"remote_project_id": remote}).status_code == 200
        assert api.put(quota, json={"limits": {"cores": 10}}).status_code == 200
        assert api.post(f"{quota}/sync").status_code == 202
        wait_for(lambda: len([s for s in api.get(f"{quota}/usage").json()["sites"] if s["applied_at"]]) == 3,
                 "the project's limits written to its three sites")
        made = api.post("/v1/images", json={"name": "e2e-rolled", "mode": "controlled",
                                            "source": {"site": "e2e-0", "image_id": image},
                                            "rollout": {"waves": [{"count": 1}, {"rest": True}], "manual": True}})
        assert made.status_code == 202, made.text
        rollout = wait_for(lambda: (r := api.get("/v1/images/e2e-rolled").json()["options"]["rollout"])["state"]
                           == "paused" and r, "the first wave copied, the manual rollout paused")
    # the map: sites by latitude and longitude, colored by availability
    sign_in(browser, fleet.url, fleet.admin)
    browser.get(f"{fleet.url}/ui/#/map")
    dots = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#site-map a[data-site]"), "the map's sites")
    placed = {d.get_attribute("data-site"): d for d in dots}
    assert set(placed) == {"e2e-0", "e2e-1"}, "a site without a location is not on the map"
    paris = placed["e2e-0"].find_element(By.TAG_NAME, "circle")
    assert (float(paris.get_attribute("cx")), float(paris.get_attribute("cy"))) == (182.35, 41.15)
    assert "av-online" in paris.get_attribute("class")
    assert browser.execute_script("return getComputedStyle(arguments[0]).fill", paris) == "rgb(26, 127, 55)"
    listed = rows_of(browser, "Sites and their location")
    assert listed["e2e-2"][1] == "no location" and listed["e2e-1"][1:] == ["-33.87", "151.21"], listed
    screenshot(browser, "map")

    # the rollout: its waves, their state and each site's copy
    browser.get(f"{fleet.url}/ui/#/rollouts")
    waves = wait_for(lambda: rows_of(browser, "Waves of image e2e-rolled"), "the rollout's waves")
    first, rest = rollout["wave_names"]
    assert waves["Wave 1"][0] == "paused" and f"{first[0]} in-sync" in waves["Wave 1"][1], waves
    assert waves["Wave 2"][0] == "waiting" and all(f"{n} no copy yet" in waves["Wave 2"][1] for n in rest), waves
    bar = browser.find_element(By.CSS_SELECTOR, ".rollout-progress progress[data-image=e2e-rolled]")
    total = len(first) + len(rest)
    assert (bar.get_attribute("value"), bar.get_attribute("max")) == (str(len(first)), str(total))
    assert f"{len(first)}/{total} sites in sync ({100 * len(first) // total} %)" in bar.find_element(
        By.XPATH, "..").text
    screenshot(browser, "rollouts")
    assert problems(browser) == []

    # the quota: a tenant signed in with its password sees its own project's limit, usage and split
    browser.find_element(By.ID, "logout").click()
    sign_in_with_password(browser, fleet.url, "demo", DEMO_PASSWORD, "demo")
    browser.get(f"{fleet.url}/ui/#/quota")
    quota = wait_for(lambda: rows_of(browser, "Global limit, usage and each site"), "the tenant's quota")
    assert browser.find_element(By.ID, "quota-project").get_attribute("value") == home.demo_project
    # usage is what the sites report for the project (the simulator is shared: another test's server counts)
    assert quota["cores"][0] == "10" and re.fullmatch(r"\d+/10 \(\d+%\)", quota["cores"][1]), quota
    header = [th.text for th in browser.find_elements(
        By.XPATH, "//table[starts-with(caption, 'Global limit')]/thead//th")]
    assert header[3:] == sorted(fleet.sites), header  # one column per site of the split
    shares = [int(cell.split(" / ")[1]) for cell in quota["cores"][2:]]
    assert len(shares) == 3 and sum(shares) <= 10, quota  # hard mode: the sites' limits add up to the global one
    facts = browser.find_element(By.ID, "quota-facts").text
    assert home.demo_project in facts and "hard" in facts, facts
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the quota view is {overflow}px wider than the window"
    screenshot(browser, "tenant-quota")
    browser.get(f"{fleet.url}/ui/#/map")
    alert = WebDriverWait(browser, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#view .error")))
    assert "403" in alert.text, "a tenant gets no map: the sites are fleet admins' only"
    assert problems(browser, allowed=("/v1/sites", "status of 403")) == []


def test_a_site_taken_down_turns_offline_before_the_users_eyes(fleet: Fleet, browser: webdriver.Chrome,
                                                              screenshot: Callable[[webdriver.Chrome, str], Path]
                                                              ) -> None:
    sign_in(browser, fleet.url, fleet.admin)
    sites = wait_for(lambda: rows_of(browser, "Sites ("), "the sites table")
    assert sites["e2e-2"][0] == "online", sites
    WebDriverWait(browser, 15).until(ec.text_to_be_present_in_element((By.ID, "sites-live"), "live: connected"))
    browser.execute_script("window.__sameDocument = 42")
    down = fleet.sim.site_names()[3]  # registered as e2e-2
    fleet.sim.set_faults(down, down=True)  # the site stops answering, as a power cut would
    try:
        # the user only waits: the audits miss it twice, the event arrives on the page's stream
        offline = wait_for(lambda: (rows := rows_of(browser, "Sites (")).get("e2e-2", [""])[0] == "offline" and rows,
                           "e2e-2 shown offline", timeout=60)
        assert offline["e2e-0"][0] == offline["e2e-1"][0] == "online", offline
        tally = browser.find_element(By.CSS_SELECTOR, "#availability-counts li[data-availability=offline]").text
        assert tally.startswith("1"), tally
        assert browser.execute_script("return window.__sameDocument") == 42, "the page was reloaded"
        screenshot(browser, "site-offline-live")
    finally:
        fleet.sim.set_faults(down, down=False)
    back = wait_for(lambda: (rows := rows_of(browser, "Sites (")).get("e2e-2", [""])[0] == "online" and rows,
                    "e2e-2 back online", timeout=60)
    assert back and browser.execute_script("return window.__sameDocument") == 42
    assert problems(browser) == []


def test_a_keypair_sync_is_watched_to_100_percent(fleet: Fleet, browser: webdriver.Chrome,
                                                  screenshot: Callable[[webdriver.Chrome, str], Path]) -> None:
    slow = fleet.sim.site_names()[2]  # e2e-1 answers slowly: the sync takes a few seconds
    sign_in(browser, fleet.url, fleet.tenant)
    browser.get(f"{fleet.url}/ui/#/operations")
    WebDriverWait(browser, 15).until(ec.text_to_be_present_in_element((By.ID, "operations-live"), "none under way"))
    browser.execute_script("window.__sameDocument = 42")
    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl e2e"
    fleet.sim.set_faults(slow, latency_ms=1500)
    try:
        with httpx.Client(base_url=fleet.url, headers={"X-Auth-Token": fleet.tenant}, timeout=30) as api:
            made = api.post("/v1/keypairs", json={"spec": {"name": f"kp-{uuid.uuid4().hex[:6]}", "public_key": key}})
            assert made.status_code == 202, made.text
        short = made.json()["operation_id"][:8]
        first = wait_for(lambda: rows_of(browser, "Operations, newest first").get(short), "the sync in the view")
        assert first[0] == "sync.keypair" and "(100 %)" not in first[2], f"finished before it was seen: {first}"
        seen = {first[2]}
        done = wait_for(lambda: (row := rows_of(browser, "Operations, newest first").get(short)) and (
            seen.add(row[2]) or "(100 %)" in row[2]) and row, "the sync at 100 %", timeout=60)
    finally:
        fleet.sim.set_faults(slow, latency_ms=0)
    assert done[1] == "succeeded" and done[2] == f"{len(fleet.sites)}/{len(fleet.sites)} (100 %)", done
    assert len(seen) >= 2, f"the progress did not move on the page: {seen}"
    assert browser.execute_script("return window.__sameDocument") == 42, "the page was reloaded"
    screenshot(browser, "keypair-100")
    assert problems(browser, allowed=("/v1/sites", "status of 403")) == []
