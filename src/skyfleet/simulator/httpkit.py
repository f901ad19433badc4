"""Small HTTP toolkit shared by the simulated services.

Why it exists: every simulated service needs the same few things -- a request context (site, token,
microversion, base URL for links), a tiny method+path router and JSON responses -- and none of them
should pay for aiohttp.web's full application machinery when one process serves thousands of sites.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from aiohttp import web
from multidict import CIMultiDict

if TYPE_CHECKING:
    from .faults import Faults
    from .state import Site, Token

Handler = Callable[["Ctx"], Awaitable[web.StreamResponse]]


class BadJson(Exception):
    """The request body is not the JSON document the route expects."""


@dataclass(slots=True)
class Ctx:
    """Everything a service handler needs to answer one request."""

    request: web.BaseRequest
    site: Site
    base: str  # public URL of the service root, e.g. http://h:p/site-0001/compute
    path: str  # path under the service root, always starting with "/"
    params: dict[str, str] = field(default_factory=dict)
    token: Token | None = None
    version: tuple[int, int] = (0, 0)  # negotiated microversion, (0, 0) when the service has none
    headers: CIMultiDict[str] = field(default_factory=CIMultiDict)  # extra response headers
    faults: Faults | None = None  # the site's faults when they apply to this service, else None

    @property
    def method(self) -> str:
        return self.request.method

    @property
    def query(self) -> Any:
        return self.request.query

    async def json(self) -> Any:
        raw = await self.request.read()
        if not raw:
            raise BadJson("The request body is empty.")
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise BadJson(f"Malformed request body: {exc}") from exc

    async def body(self, key: str) -> dict[str, Any]:
        """The JSON object wrapped under `key` (e.g. {"server": {...}})."""
        doc = await self.json()
        if not isinstance(doc, dict) or not isinstance(doc.get(key), dict):
            raise BadJson(f"Expected a JSON object under '{key}'.")
        inner: dict[str, Any] = doc[key]
        return inner

    @property
    def is_admin(self) -> bool:
        return self.token is not None and self.token.is_admin

    @property
    def project_id(self) -> str:
        return (self.token.project_id if self.token else None) or ""

    @property
    def user_id(self) -> str:
        return self.token.user_id if self.token else ""

    def at_least(self, major: int, minor: int) -> bool:
        return self.version >= (major, minor)

    def flag(self, name: str) -> bool:
        value = self.request.query.get(name, "")
        return value.lower() in ("1", "true", "yes", "on", "t", "y")


def request_id() -> str:
    return f"req-{uuid.uuid4()}"


def json_response(
    body: Any, status: int = 200, headers: CIMultiDict[str] | dict[str, str] | None = None
) -> web.Response:
    hdrs: CIMultiDict[str] = CIMultiDict(headers or {})
    hdrs.setdefault("x-openstack-request-id", request_id())
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        headers=hdrs,
        content_type="application/json",
    )


def empty(status: int = 204, headers: CIMultiDict[str] | dict[str, str] | None = None) -> web.Response:
    hdrs: CIMultiDict[str] = CIMultiDict(headers or {})
    hdrs.setdefault("x-openstack-request-id", request_id())
    if status == 204:
        return web.Response(status=status, headers=hdrs)
    hdrs["Content-Type"] = "text/html; charset=UTF-8"
    return web.Response(status=status, headers=hdrs, body=b"")


def identity_v3_url(ctx: Ctx) -> str:
    """The public keystone URL of the request's site (what keystonemiddleware names in WWW-Authenticate)."""
    root = ctx.base.rsplit("/", 2)[0]
    return f"{root}/{ctx.site.keystone_leader.name}/identity/v3"


def unauthorized(ctx: Ctx) -> web.Response:
    """What keystonemiddleware answers in front of every service for a missing or invalid token."""
    return json_response(
        {"error": {"code": 401, "title": "Unauthorized",
                   "message": "The request you have made requires authentication."}},
        401,
        {"WWW-Authenticate": f'Keystone uri="{identity_v3_url(ctx)}"'},
    )


WEBOB_TITLES = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
                409: "Conflict", 413: "Request Entity Too Large", 415: "Unsupported Media Type",
                500: "Internal Server Error", 503: "Service Unavailable"}


def webob_error(ctx: Ctx, status: int, message: str) -> web.Response:
    """webob's error body (glance, and cinder outside its API): JSON when the client accepts it, HTML otherwise."""
    title = WEBOB_TITLES.get(status, "Error")
    if "json" in ctx.request.headers.get("Accept", "application/json"):
        return json_response({"message": f"{message}<br /><br />\n\n\n", "code": f"{status} {title}",
                              "title": title}, status)
    html = (f"<html>\n <head>\n  <title>{status} {title}</title>\n </head>\n <body>\n  <h1>{status} {title}</h1>\n"
            f"  {message}<br /><br />\n\n\n\n </body>\n</html>")
    return web.Response(text=html, status=status, content_type="text/html",
                        headers={"x-openstack-request-id": request_id()})


def redirect(location: str) -> web.Response:
    """The 302 that webob/routes answer for a versioned root without its trailing slash."""
    return web.Response(status=302, headers={"Location": location, "Content-Type": "text/plain; charset=utf8",
                                             "x-openstack-request-id": request_id()})


_PARAM = re.compile(r"\{(\w+)\}")


class Router:
    """Maps (method, path template) to handlers; templates use {name} for one path segment."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._static: dict[tuple[str, str], Handler] = {}

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            for m in method.split(","):
                if "{" not in template:
                    self._static[(m, template)] = handler
                    self._static[(m, template + "/")] = handler
                else:
                    pattern = re.compile("^" + _PARAM.sub(r"(?P<\1>[^/]+)", template) + "/?$")
                    self._routes.append((m, pattern, handler))
            return handler

        return register

    def match(self, method: str, path: str) -> tuple[Handler | None, dict[str, str], bool]:
        """(handler, path params, path_known); path_known without handler means 405."""
        handler = self._static.get((method, path))
        if handler is not None:
            return handler, {}, True
        known = any(p == path for (_, p) in self._static)
        for m, pattern, h in self._routes:
            found = pattern.match(path)
            if found is None:
                continue
            if m == method:
                return h, found.groupdict(), True
            known = True
        return None, {}, known


def paginate(
    items: list[dict[str, Any]], limit: int | None, marker: str | None, key: str = "id"
) -> tuple[list[dict[str, Any]], str | None, bool]:
    """(page, id of the page's last item when more may follow, marker_found)."""
    start = 0
    if marker:
        for i, item in enumerate(items):
            if item.get(key) == marker:
                start = i + 1
                break
        else:
            return [], None, False
    page = items[start:] if limit is None else items[start : start + limit]
    more = limit is not None and start + limit < len(items)
    return page, (page[-1][key] if more and page else None), True


def page_size(ctx: Ctx, asked: int | None, default: int | None = None) -> int | None:
    """The page size a listing answers: what was asked (else the service's ``default``; None = all),
    at most the site's ``max_page`` (the stand-in for Nova/Cinder ``osapi_max_limit``, Neutron
    ``pagination_max_limit`` and Glance ``api_limit_max``)."""
    size = default if asked is None else asked
    cap = ctx.faults.max_page if ctx.faults is not None else 0
    if cap <= 0:
        return size
    return cap if size is None else min(size, cap)


def next_href(ctx: Ctx, url: str, marker: str, limit: int | None) -> str:
    """The rel=next link Nova, Cinder and Neutron answer: the request's own query (filters kept) with
    the page's last item as marker."""
    query = [(k, v) for k, v in ctx.query.items() if k not in ("marker", "limit")]
    if limit is not None:
        query.append(("limit", str(limit)))
    query.append(("marker", marker))
    return f"{url}?{urlencode(query)}"


def int_param(value: str | None, default: int | None = None) -> int | None:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        return default
