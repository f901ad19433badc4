"""The live fleet the dashboard's browser tests share: a keystone-mode Skyfleet with workers over
simulated sites (three registered, an admin, a tenant and a second tenant's tokens), and the steps a
user takes in the page (sign in, read a table, wait as a user waits)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from skyfleet.api.runtime import Runtime
from skyfleet.simulator import Simulator
from skyfleet.simulator.state import DEMO_PASSWORD
from tests.functional.conftest import site_auth


def keystone_token(auth_url: str, username: str, password: str, project: str) -> str:
    """A project-scoped token of the simulated home Keystone, as a user gets one."""
    token: str = ks_session.Session(auth=v3.Password(
        auth_url=auth_url, username=username, password=password, user_domain_name="Default",
        project_name=project, project_domain_name="Default")).get_token()
    return token


@dataclass
class Fleet:
    url: str
    sim: Simulator
    sites: list[str]  # names registered in Skyfleet
    admin: str  # tokens
    tenant: str
    other: str


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll as a user would until ``check`` answers something true."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture
def fleet(sim: Simulator, runtime_factory: Callable[..., Runtime], live_server: Callable[..., str]) -> Iterator[Fleet]:
    home = sim.site_names()[0]
    ks = sim.fleet.get(home).keystone
    n = uuid.uuid4().hex[:8]
    other = ks.add_project(f"other-{n}", "")
    ks.assignments.add((ks.add_user(f"olga-{n}", "olga-pass", other), other, ks.role_id("member")))
    auth = site_auth(sim, home)
    rt = runtime_factory(None, None, auth_mode="keystone", home_auth_url=auth["auth_url"],
                         home_username=auth["username"], home_password=auth["password"],
                         home_project_name=auth["project_name"], fanout_rate=0, audit_interval=2,
                         inventory_interval=2, inventory_full_interval=3, events_stream_max_seconds=30,
                         quota_interval=2)
    url = live_server(rt, workers=True)
    key = auth["auth_url"]
    f = Fleet(url, sim, [], keystone_token(key, "admin", auth["password"], "admin"),
              keystone_token(key, "demo", DEMO_PASSWORD, "demo"), keystone_token(key, f"olga-{n}", "olga-pass",
                                                                                 f"other-{n}"))
    with httpx.Client(base_url=url, headers={"X-Auth-Token": f.admin}, timeout=30) as api:
        for index, name in enumerate(sim.site_names()[1:4]):
            made = api.post("/v1/sites", json={"name": f"e2e-{index}", "group": "eu" if index else "us",
                                               "labels": {"tier": "edge"}, "auth": site_auth(sim, name)})
            assert made.status_code == 201, made.text
            f.sites.append(f"e2e-{index}")
        wait_for(lambda: all(s["availability"] == "online" for s in api.get("/v1/sites").json()["sites"]),
                 "every site online")
        wait_for(lambda: len([s for s in api.get("/v1/inventory/summary").json()["sites"] if s.get("capacity")])
                 == len(f.sites), "the capacity of every site in the inventory")
        wait_for(lambda: {n["name"]: n["sites"] for n in api.get("/v1/indicators/names").json()["names"]}
                 ["api.compute.latency_ms"] == len(f.sites), "an audit's indicator samples of every site")
    yield f


def sign_in(driver: webdriver.Chrome, url: str, token: str) -> None:
    """Sign in by pasting a token: the page trades it for a session cookie and keeps nothing."""
    driver.get(f"{url}/ui/")
    field = WebDriverWait(driver, 15).until(ec.visibility_of_element_located((By.ID, "token")))
    assert driver.find_element(By.CSS_SELECTOR, "label[for=token]").text.startswith("Keystone token")
    field.send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "#login button[type=submit]").click()
    WebDriverWait(driver, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#nav")))
    assert_no_token_in_reach_of_scripts(driver, token)


def assert_no_token_in_reach_of_scripts(driver: webdriver.Chrome, token: str | None = None) -> dict[str, Any]:
    """What a script of the page could read holds no session: ``document.cookie`` has the CSRF cookie
    only, sessionStorage and localStorage are empty, the URL names no token; the session cookie is
    HttpOnly and SameSite=Strict. Returns the session cookie as the browser keeps it."""
    readable, stores = driver.execute_script(
        "return [document.cookie, JSON.stringify([sessionStorage.length, localStorage.length,"
        " Object.keys(sessionStorage), Object.keys(localStorage)])]")
    assert "skyfleet_session" not in readable and "skyfleet_csrf=" in readable, readable
    assert stores == "[0,0,[],[]]", f"nothing in the page's storage: {stores}"
    cookies = {c["name"]: c for c in driver.get_cookies()}
    session = cookies["skyfleet_session"]
    assert session["httpOnly"] is True and session["sameSite"] == "Strict" and session["path"] == "/", session
    assert cookies["skyfleet_csrf"]["httpOnly"] is False and cookies["skyfleet_csrf"]["sameSite"] == "Strict"
    if token is not None:
        assert token not in readable and token not in driver.current_url and session["value"] != token
        assert token not in driver.page_source, "the pasted token is not left in the page"
    return session


def sign_in_with_password(driver: webdriver.Chrome, url: str, user: str, password: str, project: str) -> None:
    driver.get(f"{url}/ui/")
    WebDriverWait(driver, 15).until(ec.visibility_of_element_located((By.ID, "signin-user")))
    for field, value in (("signin-user", user), ("signin-password", password), ("signin-project", project)):
        driver.find_element(By.ID, field).send_keys(value)
    driver.find_element(By.CSS_SELECTOR, "#password-login button[type=submit]").click()
    WebDriverWait(driver, 15).until(ec.visibility_of_element_located((By.CSS_SELECTOR, "#nav")))


def rows_of(driver: webdriver.Chrome, caption_start: str) -> dict[str, list[str]]:
    """The rows of the table whose caption starts with ``caption_start``: first cell -> the others
    (nothing when a live view redrew the table while it was read: the caller's wait reads it again)."""
    try:
        return _rows_of(driver, caption_start)
    except StaleElementReferenceException:
        return {}


def _rows_of(driver: webdriver.Chrome, caption_start: str) -> dict[str, list[str]]:
    for table in driver.find_elements(By.TAG_NAME, "table"):
        if table.find_element(By.TAG_NAME, "caption").text.startswith(caption_start):
            rows = {}
            for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr"):
                cells = [c.text for c in tr.find_elements(By.CSS_SELECTOR, "th, td")]
                rows[cells[0]] = cells[1:]
            return rows
    return {}
