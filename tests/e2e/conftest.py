"""The browser tier: the dashboard in Debian's headless chromium, driven through chromedriver (Selenium).

Why a real browser: the page's promises (the CSP blocks nothing of ours, the token never leaves the
header, the live stream arrives without a reload, a tenant sees only its own) hold only in a browser.
Chromium and chromedriver come from Debian (``scripts/install-browser.sh``, run by ``make test``). In CI
a missing browser fails the tier instead of skipping it; on a workstation the skip says what to run.
Screenshots are written to ``var/e2e-screenshots`` (or ``SKYFLEET_E2E_SCREENSHOTS``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.e2e.fleet import fleet, keystone_token  # noqa: F401 - the live fleet fixture and a helper the tier shares
from tests.functional.conftest import live_server, sim, site_auth  # noqa: F401 - fixtures shared with this tier

CHROMIUM = os.environ.get("SKYFLEET_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("SKYFLEET_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(os.environ.get("SKYFLEET_E2E_SCREENSHOTS", "var/e2e-screenshots"))

# Recorded before any script of the page runs (a script added through the DevTools protocol is exempt
# from the page's CSP): every CSP violation and uncaught error, read back by the tests.
WATCH = """
window.__skyfleetProblems = [];
document.addEventListener('securitypolicyviolation', (e) => window.__skyfleetProblems.push(
  'CSP: ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline')
  + ' at ' + e.sourceFile + ':' + e.lineNumber));
window.addEventListener('error', (e) => window.__skyfleetProblems.push('error: ' + e.message));
window.addEventListener('unhandledrejection', (e) => window.__skyfleetProblems.push('rejection: ' + e.reason));
"""


@pytest.fixture(scope="session")
def browser_binaries() -> tuple[str, str]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        why = f"no headless browser: {', '.join(missing)} missing; run scripts/install-browser.sh"
        if os.environ.get("CI"):  # CI installs the browser: the tier must run there, not vanish
            pytest.fail(why)
        pytest.skip(why)
    return CHROMIUM, CHROMEDRIVER


@pytest.fixture
def browser(browser_binaries: tuple[str, str]) -> Iterator[webdriver.Chrome]:
    chromium, chromedriver = browser_binaries
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": WATCH})
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[webdriver.Chrome, str], Path]:
    def take(driver: webdriver.Chrome, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{request.node.name}-{name}.png"
        driver.save_screenshot(str(path))
        return path

    return take


def problems(driver: webdriver.Chrome, allowed: tuple[str, ...] = ()) -> list[str]:
    """CSP violations, uncaught errors and console errors of the page, but for ``allowed`` substrings
    (the console logs a refused fetch, e.g. a tenant's 403 on the sites list, as an error)."""
    found: list[str] = list(driver.execute_script("return window.__skyfleetProblems || []"))
    logs: list[dict[str, Any]] = driver.get_log("browser")
    found += [e["message"] for e in logs if e.get("level") == "SEVERE"]
    return [p for p in found if not any(a in p for a in allowed)]
