"""The one place where exceptions become REST error responses."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from auth.errors import CapgateError

logger = logging.getLogger(__name__)

_HTTP_CODES = {404: ("not_found", "Not found"), 405: ("method_not_allowed", "Method not allowed")}


def error_response(error: CapgateError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers())


async def handle_capgate_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CapgateError)
    return error_response(exc)


async def handle_http_exception(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("http_error", exc.detail or "HTTP error"))
    return JSONResponse({"error": message, "code": code}, status_code=exc.status_code, headers=exc.headers)


async def handle_client_gone(_request: Request, _exc: Exception) -> Response:
    """The client hung up mid-body: nobody reads this answer and it is not an error of ours (no stack trace)."""
    return Response(status_code=400)


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(CapgateError())


EXCEPTION_HANDLERS = {
    CapgateError: handle_capgate_error,
    HTTPException: handle_http_exception,
    ClientDisconnect: handle_client_gone,
    Exception: handle_unexpected,
}
