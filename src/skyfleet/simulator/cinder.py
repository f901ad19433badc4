"""stub"""

from __future__ import annotations

from aiohttp import web

from .httpkit import Ctx, json_response


def discovery(ctx: Ctx) -> web.StreamResponse | None:
    return None


def error(ctx: Ctx, status: int, message: str) -> web.StreamResponse:
    return json_response({"error": message}, status)


async def handle(ctx: Ctx) -> web.StreamResponse:
    return error(ctx, 404, "nope")
