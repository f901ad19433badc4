"""One error body everywhere: ``{"code": int, "title": str, "detail": str, "request_id": str}``.

``request_id`` is the id of the request (also in the ``X-Request-Id`` header and on every log line of
the request), so a user can quote it and an operator find the lines.

Input errors become 4xx with the reason; a database that cannot be reached becomes 503; anything
else is a 500 whose body says nothing about internals (the log has the trace, redacted).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from skyfleet import log_context
from skyfleet.api import spec
from skyfleet.errors import ApiError

log = logging.getLogger(__name__)


def error_body(status: int, detail: str, title: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"code": status, "title": title or HTTPStatus(status).phrase, "detail": detail}
    request_id = log_context.get("request_id")
    if request_id is not None:
        body["request_id"] = request_id
    return body


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    return ".".join(parts) or "body"


def _validation_detail(exc: RequestValidationError) -> str:
    messages = []
    for error in exc.errors()[:10]:
        where = _location(tuple(error.get("loc", ())))
        kind = error.get("type", "")
        if kind == "extra_forbidden":
            messages.append(f"{where}: unknown field")
        elif kind == "missing":
            messages.append(f"{where}: field required")
        else:
            messages.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(messages) or "invalid request"


def install(app: FastAPI) -> None:
    spec.install(app)  # the OpenAPI document shows these bodies and statuses

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Keystone"} if exc.status == 401 else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            headers = {"Retry-After": str(retry_after)}
        return JSONResponse(error_body(exc.status, exc.detail, exc.title), status_code=exc.status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(422, _validation_detail(exc)), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse(error_body(exc.status_code, detail), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def _db_down(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", type(exc).__name__)
        return JSONResponse(error_body(503, "the database is unavailable; retry shortly"), status_code=503,
                            headers={"Retry-After": "5"})

    for exc_type in (OperationalError, InterfaceError, PoolTimeout):
        app.add_exception_handler(exc_type, _db_down)

    @app.exception_handler(DBAPIError)
    async def _dbapi(request: Request, exc: DBAPIError) -> JSONResponse:
        if exc.connection_invalidated:
            return await _db_down(request, exc)
        log.exception("database error")
        return JSONResponse(error_body(500, "internal error"), status_code=500)

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return JSONResponse(error_body(500, "internal error"), status_code=500)
