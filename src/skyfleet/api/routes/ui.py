"""/ui: the web dashboard's static files (skyfleet.web), served by Skyfleet itself.

Why a route and not a mounted sub-application: a mount would bypass the application's access
dependency, so the dashboard would be the one path that ``skyfleet.api.access`` does not decide. As
routes, ``GET /ui`` and ``GET /ui/{path}`` have their rows in the policy (public: the files hold no data;
every figure the page shows is fetched from /v1 with the user's token). They are left out of the
OpenAPI document (not an API); the RBAC matrix test lists them on their own. Security headers (a strict
Content-Security-Policy, no framing) are added by :mod:`skyfleet.api.security_headers`.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from skyfleet.web import STATIC_DIR


def build_router() -> APIRouter:
    """The dashboard's two routes, over the package's static directory (checked when built)."""
    files = StaticFiles(directory=STATIC_DIR, html=True)
    router = APIRouter(tags=["ui"], include_in_schema=False)

    @router.get("/ui")
    def ui_root() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=308)

    @router.get("/ui/{path:path}")
    async def ui_file(path: str, request: Request) -> Response:
        # StaticFiles refuses paths outside its directory and answers 404 (then our JSON error body)
        return await files.get_response(path or "index.html", request.scope)

    return router
