"""Security headers for the dashboard and the API, on every response including errors.

Why a middleware: the headers must also be on the answers of exception handlers and of the guards
(404 for a missing file, 401 for a missing token), which a route never sees.

- ``/ui``: a strict Content-Security-Policy (only this origin's script, style and connections; no
  inline script or style attribute; no plugins; no ``<base>``), no framing (``frame-ancestors 'none'``
  and ``X-Frame-Options: DENY``, against clickjacking), no MIME sniffing, no referrer, and
  ``Cache-Control: no-cache`` (the files may be cached but are revalidated, so an upgrade shows at once).
- ``/v1`` and ``/v1.0``: ``Cache-Control: no-store`` (a browser or proxy keeps no copy of a tenant's
  data), ``default-src 'none'`` and no framing (a JSON answer opened as a page runs nothing).
The interactive API docs (``/docs``) keep their own needs and are left alone.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

UI_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
API_CSP = "default-src 'none'; frame-ancestors 'none'"

UI_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", UI_CSP.encode()), (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"), (b"cache-control", b"no-cache"))
API_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", API_CSP.encode()), (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"), (b"cache-control", b"no-store"))


def headers_for(path: str) -> tuple[tuple[bytes, bytes], ...]:
    """The headers a response to ``path`` carries (none for paths outside the dashboard and the API)."""
    if path == "/ui" or path.startswith("/ui/"):
        return UI_HEADERS
    if path.startswith(("/v1/", "/v1.0/")) or path in ("/v1", "/v1.0"):
        return API_HEADERS
    return ()


class SecurityHeaders:
    """Sets :func:`headers_for` on each HTTP response, replacing a route's own values of those names."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = headers_for(scope.get("path", "")) if scope["type"] == "http" else ()
        if not extra:
            await self.app(scope, receive, send)
            return
        names = {name for name, _ in extra}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = [*kept, *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
