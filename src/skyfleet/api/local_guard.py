"""In noauth mode every caller is a fleet admin, so only this machine may call, and a browser on
it only from a page of this machine.

Binding to loopback is not enough: a web page the operator visits can POST a form to
http://127.0.0.1:8080 (cross-site request: refused by the Origin check), or point its own name at
127.0.0.1 (DNS rebinding: the browser then sends ``Host: evil.example``, refused by the Host check).
A pure ASGI middleware so it also covers websockets and runs before any route.
"""

from __future__ import annotations

import ipaddress
import json
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from skyfleet.api.errors import error_body
from skyfleet.config import Settings


def _loopback_name(host: str, extra: frozenset[str]) -> bool:
    name = host.lower().rstrip(".")
    if name == "localhost" or name in extra:
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


def host_is_local(value: str, extra: frozenset[str] = frozenset()) -> bool:
    """A Host header naming this machine: localhost, 127.0.0.0/8 or [::1], with an optional port."""
    if value.startswith("["):
        address, _, rest = value[1:].partition("]")
        return (rest == "" or (rest.startswith(":") and rest[1:].isdigit())) and _loopback_name(address, extra)
    name, _, port = value.partition(":")
    return (port == "" or port.isdigit()) and ":" not in port and bool(name) and _loopback_name(name, extra)


def origin_is_local(value: str, extra: frozenset[str] = frozenset()) -> bool:
    """An Origin header of a page served by this machine over http(s)."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and \
        _loopback_name(parts.hostname or "", extra)


class LocalGuard:
    """Refuses non-loopback Host (421) and non-loopback Origin (403) headers."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(headers.get(b"host"), headers.get(b"origin"))
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
        else:
            status, detail = refusal
            body = json.dumps(error_body(status, detail)).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})

    def _refusal(self, host: str | None, origin: str | None) -> tuple[int, str] | None:
        if host is None or not host_is_local(host, self.allowed_hosts):
            return 421, ("noauth mode answers only requests addressed to this machine (Host localhost, "
                         "127.0.0.1 or [::1]); set SKYFLEET_NOAUTH_ALLOWED_HOSTS for another local name")
        if origin is not None and not origin_is_local(origin, self.allowed_hosts):
            return 403, "noauth mode refuses requests from web pages of other origins than this machine"
        return None


def install(app: FastAPI, settings: Settings) -> None:
    """Guard ``app`` (a FastAPI app) when ``settings`` run without authentication."""
    if settings.auth_mode == "noauth":
        allowed = frozenset(h.strip().lower() for h in settings.noauth_allowed_hosts.split(",") if h.strip())
        app.add_middleware(LocalGuard, allowed_hosts=allowed)
