"""Make the OpenAPI document tell the truth about errors, once for every route.

Why it exists: FastAPI documents each route's 422 as its own ``HTTPValidationError`` (``detail`` an
array), while Skyfleet answers every error with ``{"code", "title", "detail"}`` (``detail`` a
string), and it documents none of the other statuses a route can answer (400, 401, 403, 404, 409,
413, 429, 503). Clients generated from the spec, and the API fuzz test that checks responses
against it, need the real shapes; doing it here keeps every route declaration free of it. A route
with a status of its own (Kingbird's 406) declares only its description; the body is set here.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

from skyfleet.api.params import MAX_PATH_PARAM, SHORT_PATH_PARAMS

ERROR_SCHEMA = "ErrorBody"
# What each status means in Skyfleet (docs/api.md, "Errors").
MEANING = {
    400: "A parameter has a valid type but a bad value (the detail names it and the limit).",
    401: "No X-Auth-Token (nor dashboard session cookie), or an invalid or expired one.",
    403: "The caller's role does not allow this (the detail says which role is needed); through the dashboard's "
         "session cookie, a change without its X-CSRF-Token or a page of another origin; in noauth mode, a "
         "foreign Origin.",
    404: "Unknown resource, unknown marker or unknown path.",
    409: "Conflicts with the current state (duplicate name, nothing to retry, ambiguous name).",
    413: "The request body is larger than max_body_bytes.",
    421: "noauth mode only: the Host header does not name this machine.",
    422: "Wrong types, unknown or missing fields, malformed JSON (the detail lists each field).",
    429: "Too many requests; Retry-After says when to retry.",
    503: "The database or the home Keystone cannot be reached; Retry-After says when to retry.",
}
AUTHENTICATED = (400, 401, 403, 404, 409, 413, 421, 422, 429, 503)
PUBLIC: dict[str, tuple[int, ...]] = {"/healthz": (403, 413, 421, 503), "/metrics": (401, 403, 413, 421, 503)}
PUBLIC_DEFAULT = (403, 413, 421)  # 403 and 421: noauth mode's guard (foreign Origin, foreign Host)
RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}}


class ErrorBody(BaseModel):
    """Every error Skyfleet answers."""

    code: int = Field(description="The HTTP status, repeated.")
    title: str = Field(description="The status phrase, e.g. Bad Request.")
    detail: str = Field(description="What was wrong, naming the field, parameter or limit.")
    request_id: str | None = Field(None, description="The request's id, as in the X-Request-Id header and "
                                   "on the server's log lines: quote it when reporting a problem.")


def statuses_of(path: str) -> tuple[int, ...]:
    """The error statuses an operation under ``path`` can answer."""
    if path.startswith("/v1/") or path.startswith("/v1.0/") or path == "/v1":
        return AUTHENTICATED
    return PUBLIC.get(path, PUBLIC_DEFAULT)


def document_errors(schema: dict[str, Any]) -> dict[str, Any]:
    """Rewrite ``schema`` in place: every operation's error responses use :class:`ErrorBody`."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components[ERROR_SCHEMA] = ErrorBody.model_json_schema()
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    reference = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}}}
    for path, item in schema.get("paths", {}).items():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            _limit_path_parameters(operation)
            responses = operation["responses"]
            for code, declared in responses.items():  # statuses a route declares itself (e.g. Kingbird's 406)
                if code[:1] in ("4", "5"):
                    declared["content"] = reference
            for status in statuses_of(path):
                entry: dict[str, Any] = {"description": f"{HTTPStatus(status).phrase}. {MEANING[status]}",
                                         "content": reference}
                if status in (429, 503):
                    entry["headers"] = RETRY_AFTER
                responses[str(status)] = entry
    return schema


def _limit_path_parameters(operation: dict[str, Any]) -> None:
    """Path parameters carry the length limit that every router enforces (skyfleet.api.params)."""
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        if parameter.get("in") == "path" and schema.get("type") == "string":
            schema.setdefault("maxLength", SHORT_PATH_PARAMS.get(parameter["name"], MAX_PATH_PARAM))


def install(app: FastAPI) -> None:
    """Post-process the app's generated document (built once, then cached by FastAPI)."""
    generate: Callable[[], dict[str, Any]] = app.openapi
    done: list[bool] = []

    def openapi() -> dict[str, Any]:
        schema = generate()
        if not done:
            document_errors(schema)
            done.append(True)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
