"""The one JSON body reader: bounded in size before it is parsed, and parse errors that name the problem."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from auth.errors import InvalidRequest, PayloadTooLarge, validation_details
from server.routes.params import ascii_int

M = TypeVar("M", bound=BaseModel)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    declared_size = ascii_int(declared) if declared is not None else None
    if declared_size is not None and declared_size > limit:
        raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"Request body is larger than {limit} bytes")
    return bytes(body)


def parse_json(raw: bytes, not_json: str = "Request body is not valid JSON") -> Any:
    """JSON that can be stored as it is: not nested past the parser's depth, no unpaired UTF-16 surrogate."""
    try:
        data = json.loads(raw)
        # A lone "\ud800" parses, then fails when a database encodes it as UTF-8: refuse it here instead.
        json.dumps(data, ensure_ascii=False).encode()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest(not_json, details={"body": "not valid JSON"}) from None
    except RecursionError:
        raise InvalidRequest("Request body is nested too deeply", details={"body": "nested too deeply"}) from None
    except UnicodeEncodeError:
        message = "Request body contains an unpaired surrogate (\\ud800-\\udfff)"
        raise InvalidRequest(message, details={"body": "unpaired UTF-16 surrogate"}) from None
    return data


async def read_model(request: Request, model: type[M], limit: int) -> M:
    """The body parsed into ``model``; an empty body counts as ``{}``."""
    raw = await read_body(request, limit)
    data: Any = parse_json(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object", details={"body": "must be an object"})
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidRequest("Invalid request body", details=validation_details(exc)) from None
