"""One error tree for Skyfleet.

API errors carry an HTTP status and are rendered once, at the HTTP edge, as
``{"code", "title", "detail"}``. Site errors are raised by drivers and say whether a retry can help.
"""

from __future__ import annotations


class SkyfleetError(Exception):
    """Base of every error Skyfleet raises on purpose."""


class ApiError(SkyfleetError):
    """An error a client caused or must know about; rendered with ``status``."""

    status: int = 400
    title: str = "Bad Request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class Invalid(ApiError):
    status = 400
    title = "Bad Request"


class Unprocessable(ApiError):
    """Well-formed input that cannot be served as asked (a range too long for its step, an unknown name)."""

    status = 422
    title = "Unprocessable Entity"


class Unauthorized(ApiError):
    status = 401
    title = "Unauthorized"


class Forbidden(ApiError):
    status = 403
    title = "Forbidden"


class NotFound(ApiError):
    status = 404
    title = "Not Found"


class Conflict(ApiError):
    status = 409
    title = "Conflict"


class TooLarge(ApiError):
    status = 413
    title = "Payload Too Large"


class BadGateway(ApiError):
    """A site Skyfleet works through for the request refused or failed it."""

    status = 502
    title = "Bad Gateway"


class Unavailable(ApiError):
    status = 503
    title = "Service Unavailable"


class SiteError(SkyfleetError):
    """A call to a site failed. ``temporary`` says whether retrying later can succeed."""

    temporary: bool = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class TemporarySiteError(SiteError):
    temporary = True


class PermanentSiteError(SiteError):
    temporary = False
