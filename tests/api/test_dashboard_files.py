"""The dashboard's files as the server hands them out: the page and its two assets, from the package
(so they ship in the wheel), under a strict CSP with no framing, nothing outside the static directory,
and API answers that no browser or proxy keeps."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from skyfleet.api.security_headers import UI_CSP
from skyfleet.web import STATIC_DIR


def test_the_page_and_its_assets_come_with_a_strict_policy(client: TestClient) -> None:
    for path, kind in (("/ui/", "text/html"), ("/ui/app.js", "javascript"), ("/ui/app.css", "text/css")):
        response = client.get(path)
        assert response.status_code == 200 and kind in response.headers["content-type"], path
        assert response.headers["content-security-policy"] == UI_CSP
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in UI_CSP and "'unsafe-inline'" not in UI_CSP and "default-src 'self'" in UI_CSP


def test_the_page_has_no_inline_script_style_or_remote_asset() -> None:
    html = (STATIC_DIR / "index.html").read_text()
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all('src="' in attrs and body.strip() == "" for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+\s*=", html)
    for text in (html, (STATIC_DIR / "app.js").read_text(), (STATIC_DIR / "app.css").read_text()):
        text = text.replace('"http://www.w3.org/2000/svg"', "")  # the SVG namespace: a name, never fetched
        assert "http://" not in text and "https://" not in text and "//cdn" not in text
    script = (STATIC_DIR / "app.js").read_text()
    assert "innerHTML" not in script and "localStorage.setItem" not in script and "eval(" not in script


def test_the_page_keeps_no_token_in_reach_of_its_scripts() -> None:
    """The session is an HttpOnly cookie: the page stores nothing, sends credentials to its own origin
    only, and reads the live stream with EventSource (no token in a URL)."""
    script = (STATIC_DIR / "app.js").read_text()
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
    assert "sessionStorage" not in code and "localStorage" not in code and "indexedDB" not in code
    assert 'credentials: "same-origin"' in code and '"omit"' not in code and '"include"' not in code
    assert 'new EventSource("/v1/events/stream")' in code and "?token" not in code
    assert '"X-CSRF-Token"' in code and "skyfleet_session" not in code, "the page never names the session cookie"


def test_nothing_outside_the_static_directory(client: TestClient) -> None:
    for path in ("/ui/../__init__.py", "/ui/%2e%2e/__init__.py", "/ui/..%2f__init__.py", "/ui/nope.js"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert "request_id" in response.json()
    assert client.get("/ui", follow_redirects=False).headers["location"] == "/ui/"


def test_api_answers_are_never_cached_nor_framed(client: TestClient) -> None:
    for path in ("/v1/sites", "/v1/no-such-thing"):
        response = client.get(path)
        assert response.headers["cache-control"] == "no-store", path
        assert response.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert client.get("/").json()["links"]["ui"] == "/ui/"
