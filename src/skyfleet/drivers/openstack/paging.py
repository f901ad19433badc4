"""The one rule for walking a paginated OpenStack listing, shared by every reader in the driver.

Why it exists: a site may cap pages below what Skyfleet asks for (Nova and Cinder
``osapi_max_limit``, Neutron ``pagination_max_limit``, Glance ``api_limit_max``), so a page shorter
than the asked ``limit`` does not mean the listing is over. The next page is the one the service
names: ``<key>_links`` rel=next (Nova, Cinder, Neutron) or ``next`` (Glance). Its query (marker,
limit, ...) is merged over the first request's parameters and sent to the same path on Skyfleet's
own endpoint, because a link carries the service's idea of its host name, which is not always
reachable from Skyfleet. A service that names no next page although the page is as long as asked
is asked again after the page's last id; an empty page, or a page that would repeat the request,
ends the listing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

#: Items asked per page; sites may answer fewer.
PAGE = 1000
Params = dict[str, Any]


def _next_href(body: Mapping[str, Any], key: str) -> str | None:
    for link in body.get(f"{key}_links") or []:
        if isinstance(link, Mapping) and link.get("rel") == "next" and link.get("href"):
            return str(link["href"])
    glance = body.get("next")
    return glance if isinstance(glance, str) and glance else None


def next_params(body: Any, key: str, params: Mapping[str, Any], *, marker_key: str = "id") -> Params | None:
    """The query of the page after ``body`` (asked with ``params``), or None when the listing is over."""
    items = body.get(key) if isinstance(body, Mapping) else None
    if not items:
        return None
    href = _next_href(body, key)
    if href is not None:
        following = {**params, **dict(parse_qsl(urlsplit(href).query, keep_blank_values=True))}
    else:
        limit = params.get("limit")
        last = items[-1] if isinstance(items[-1], Mapping) else {}
        if limit is None or len(items) < int(limit) or last.get(marker_key) is None:
            return None
        following = {**params, "marker": str(last[marker_key])}
    return None if following == dict(params) else following


def with_query(path: str, params: Mapping[str, Any]) -> str:
    """``path`` with ``params`` as its query string (for callers that send a whole URL)."""
    return f"{path}?{urlencode(params)}" if params else path
