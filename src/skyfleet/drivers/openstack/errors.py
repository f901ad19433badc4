"""Translate openstacksdk / keystoneauth failures into Skyfleet's site errors, once, at the driver edge.

Temporary (retry later can succeed): connection errors, timeouts, 5xx, 401 (credentials being
rotated, identity flapping), 408, 409, 429 and quota-exceeded answers. Permanent (retrying cannot
help; the site's message is kept): other 4xx, such as 400, a 403 that is not about quota, a 404
that says the request is wrong, and a service missing from the catalog.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from skyfleet.errors import PermanentSiteError, SiteError, TemporarySiteError

TEMPORARY_STATUS = frozenset({401, 408, 409, 423, 425, 429})
QUOTA_WORDS = ("quota", "over limit", "overlimit", "exceeded")


def is_temporary_status(status: int, message: str) -> bool:
    """Whether an HTTP answer ``status`` with ``message`` may succeed when retried."""
    if status >= 500 or status in TEMPORARY_STATUS:
        return True
    return status in (403, 413) and any(word in message.lower() for word in QUOTA_WORDS)


def from_status(status: int, message: str) -> SiteError:
    text = f"HTTP {status}: {message}"[:1000]
    if is_temporary_status(status, message):
        return TemporarySiteError(text, status=status)
    return PermanentSiteError(text, status=status)


def translate(exc: BaseException) -> SiteError:
    """The :class:`SiteError` that ``exc`` means; secrets never appear in these messages."""
    if isinstance(exc, SiteError):
        return exc
    if isinstance(exc, sdk_exc.HttpException) and exc.status_code is not None:
        return from_status(int(exc.status_code), str(exc.details or exc.message or type(exc).__name__))
    if isinstance(exc, ks_exc.HttpError):
        return from_status(int(exc.http_status or 500), str(exc.message or type(exc).__name__))
    if isinstance(exc, ks_exc.EndpointNotFound | sdk_exc.EndpointNotFound):
        return PermanentSiteError(f"service not in the site's catalog: {exc}"[:1000])
    if isinstance(exc, ks_exc.ConnectTimeout | ks_exc.RequestTimeout | TimeoutError):
        return TemporarySiteError(f"timed out: {type(exc).__name__}")
    if isinstance(exc, ks_exc.ConnectFailure | ks_exc.SSLError | ks_exc.DiscoveryFailure | ConnectionError):
        return TemporarySiteError(f"cannot connect: {type(exc).__name__}")
    if isinstance(exc, ks_exc.ClientException | sdk_exc.SDKException):
        return TemporarySiteError(f"{type(exc).__name__}: {exc}"[:1000])
    return PermanentSiteError(f"unexpected {type(exc).__name__}: {exc}"[:1000])


@contextmanager
def site_call() -> Iterator[None]:
    """Run driver code; any failure leaves as a :class:`SiteError`."""
    try:
        yield
    except SiteError:
        raise
    except Exception as exc:
        raise translate(exc) from exc
