"""A small HTTP client of the Skyfleet API for the CLI: finds the URL and a token, renders errors."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote

import httpx

DEFAULT_URL = "http://127.0.0.1:8080"


def seg(value: str) -> str:
    """``value`` as one path segment: a name such as ``bob#tmp`` or ``alice?domain=B`` must not become
    ``bob`` or a query that picks another resource. ``.`` and ``..`` are escaped too (a client would
    otherwise resolve them as the parent path)."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(str(value), safe="")


class ApiFailure(Exception):
    """The API answered with an error (or could not be reached); the message is for the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def resolve_token(token: str | None, os_cloud: str | None) -> str | None:
    """--token, then SKYFLEET_TOKEN, then a token from Keystone via --os-cloud / OS_* variables."""
    if token:
        return token
    if os.environ.get("SKYFLEET_TOKEN"):
        return os.environ["SKYFLEET_TOKEN"]
    cloud = os_cloud or os.environ.get("OS_CLOUD")
    if not cloud and not os.environ.get("OS_AUTH_URL"):
        return None
    import openstack.config  # slow import, only when needed

    try:
        region = openstack.config.OpenStackConfig(load_envvars=True).get_one(cloud=cloud)
        fetched: str | None = region.get_session().get_token()
    except Exception as exc:
        raise ApiFailure(f"cannot get a token from Keystone: {type(exc).__name__}: {exc}") from exc
    return fetched


class ApiClient:
    def __init__(self, url: str | None, token: str | None, *, timeout: float = 60.0) -> None:
        self.url = (url or os.environ.get("SKYFLEET_URL") or DEFAULT_URL).rstrip("/")
        headers = {"X-Auth-Token": token} if token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.response(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    def response(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The raw answer (for bodies that are not JSON, e.g. a CSV export); errors raise ApiFailure."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiFailure(f"cannot reach Skyfleet at {self.url}: {type(exc).__name__}") from exc
        if response.status_code >= 400:
            raise ApiFailure(_message(response), response.status_code)
        return response

    @contextmanager
    def stream_lines(self, path: str, params: dict[str, Any], headers: dict[str, str]) -> Iterator[Iterator[str]]:
        """The lines of a long response (Server-Sent Events) as they arrive; :class:`ApiFailure` for an
        error answer, and with ``status`` None when the connection fails or drops mid-stream."""
        try:
            with self._http.stream("GET", path, params={k: v for k, v in params.items() if v is not None},
                                   headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise ApiFailure(_message(response), response.status_code)
                yield _guarded(response.iter_lines(), self.url)
        except httpx.HTTPError as exc:
            raise ApiFailure(f"cannot reach Skyfleet at {self.url}: {type(exc).__name__}") from exc

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None})

    def pages(self, path: str, key: str, *, limit: int | None, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paginated list (or the first ``limit``)."""
        items: list[dict[str, Any]] = []
        marker = None
        while True:
            page_size = min(1000, limit - len(items)) if limit else 1000
            body = self.get(path, limit=page_size, marker=marker, **params)
            items.extend(body[key])
            marker = body.get("next_marker")
            if not marker or (limit and len(items) >= limit):
                return items


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('code', response.status_code)} {body.get('title', '')}: {body.get('detail', '')}"
    except ValueError:
        return f"{response.status_code}: {response.text[:200]}"


def _guarded(lines: Iterator[str], url: str) -> Iterator[str]:
    """``lines``, with a connection dropped mid-stream turned into :class:`ApiFailure` (status None)."""
    try:
        yield from lines
    except httpx.HTTPError as exc:
        raise ApiFailure(f"connection to {url} lost: {type(exc).__name__}") from exc
