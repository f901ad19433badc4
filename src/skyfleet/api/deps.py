"""FastAPI dependencies: the process runtime and the calling principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from skyfleet.api.auth import NOAUTH_ADMIN, Principal
from skyfleet.api.runtime import Runtime
from skyfleet.errors import Unauthorized


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_principal(request: Request, runtime: Annotated[Runtime, Depends(get_runtime)]) -> Principal:
    if runtime.validator is None:
        return NOAUTH_ADMIN
    token = request.headers.get("X-Auth-Token")
    if not token:
        raise Unauthorized("missing X-Auth-Token header (a Keystone token from the home Keystone)")
    return runtime.validator.validate(token)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
PrincipalDep = Annotated[Principal, Depends(get_principal)]
