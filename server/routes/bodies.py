"""The one JSON body reader: bounded in size before it is parsed, and parse errors that name the problem."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from auth.errors import InvalidRequest, PayloadTooLarge, validation_details

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    return bytes(body)


async def read_model(request: Request, model: type[M], limit: int) -> M:
    """The body parsed into ``model``; an empty body counts as ``{}``."""
    raw = await read_body(request, limit)
    try:
        data: Any = json.loads(raw) if raw.strip() else {}
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("Request body is not valid JSON", details={"body": "not valid JSON"}) from None
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object", details={"body": "must be an object"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest("Invalid request body", details=validation_details(exc)) from None
