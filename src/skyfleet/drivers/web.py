"""Read an image's bytes from an http(s) URL, streamed, for an image declared with a URL source.

Why it exists: the only driver that talks to something other than an OpenStack site. Redirects are
not followed (a redirect could leave the admin's allow-list, which was checked on the URL given),
the bytes are yielded in bounded chunks, and every failure leaves as a :class:`SiteError`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx

from skyfleet.errors import PermanentSiteError, TemporarySiteError

CHUNK = 1 << 20


def download(url: str, *, timeout: float, chunk: int = CHUNK) -> Iterator[bytes]:
    """The body of ``url``, chunk after chunk; 4xx is permanent, 5xx and cut transfers temporary."""
    try:
        with httpx.stream("GET", url, timeout=timeout, follow_redirects=False) as response:
            if response.status_code >= 300:
                text = f"the image URL answered HTTP {response.status_code}"
                if 300 <= response.status_code < 500 and response.status_code not in (408, 429):
                    raise PermanentSiteError(text + (" (redirects are not followed)"
                                                     if response.status_code < 400 else ""))
                raise TemporarySiteError(text, status=response.status_code)
            yield from response.iter_bytes(chunk_size=chunk)
    except httpx.HTTPError as exc:
        raise TemporarySiteError(f"reading the image URL failed: {type(exc).__name__}") from exc
