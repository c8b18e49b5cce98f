"""Liveness and readiness, reachable without a key."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse

from auth.ratelimit_resilient import ResilientBackend
from server.state import app_state


async def healthz(_request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    state = app_state(request)
    if state.drain.draining:
        return JSONResponse({"status": "draining"}, status_code=503)
    try:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError):
        return JSONResponse({"status": "unavailable", "database": "unreachable"}, status_code=503)
    backend = state.rate_limiter.backend if state.rate_limiter is not None else None
    if not isinstance(backend, ResilientBackend):
        return JSONResponse({"status": "ready", "database": "ok"})
    if await backend.check():
        return JSONResponse({"status": "ready", "database": "ok", "redis": "ok"})
    # Serving on in-process limits is degraded, not down; refusing every counted request is not ready.
    refusing = backend.mode == "closed"
    return JSONResponse(
        {"status": "unavailable" if refusing else "degraded", "database": "ok", "redis": "unreachable",
         "rateLimits": backend.mode},
        status_code=503 if refusing else 200,
    )  # fmt: skip
