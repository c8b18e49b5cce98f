"""The error hierarchy shared by every layer, and its two wire shapes.

REST routes answer ``{"error": message, "code": code[, "details": {...}]}``; the MCP
endpoint answers a JSON-RPC error object carrying the same message and code, because
MCP client libraries show only that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import ValidationError
from starlette.types import Send

JSONRPC_AUTH_ERROR = -32001


class CapgateError(Exception):
    status: int = 500
    code: str = "internal_error"
    message: str = "Internal server error"
    rule: str | None = None
    """For decision records: the rule that refused, in words (never echoed to the client)."""
    decided_for: tuple[str, str, int] | None = None
    """For decision records: key id, organization id and policy revision, when the key was identified."""

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or type(self).message
        self.code = code or type(self).code
        self.details = details
        self.extra_headers = headers or {}
        super().__init__(self.message)

    def headers(self) -> dict[str, str]:
        return dict(self.extra_headers)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.message, "code": self.code}
        if self.details:
            body["details"] = self.details
        return body

    def jsonrpc_body(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code}
        if self.details:
            data["details"] = self.details
        return {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": JSONRPC_AUTH_ERROR, "message": self.message, "data": data},
        }

    def render(self, *, jsonrpc: bool = False) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Status, raw ASGI headers and body, for code that speaks ASGI directly."""
        payload = json.dumps(self.jsonrpc_body() if jsonrpc else self.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in self.headers().items()]
        return self.status, headers, payload


async def send_error(
    send: Send, error: CapgateError, *, jsonrpc: bool = False, extra_headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """The one way ASGI code answers with an error: catalogue or JSON-RPC body, the error's own headers
    (challenges) plus ``extra_headers`` (rate-limit fields)."""
    status, headers, body = error.render(jsonrpc=jsonrpc)
    await send({"type": "http.response.start", "status": status, "headers": [*headers, *extra_headers]})
    await send({"type": "http.response.body", "body": body})


def validation_details(error: ValidationError, *, root: str = "body") -> dict[str, str]:
    """``details`` for a failed validation: the first message per field, the field named by its dotted path."""
    fields: dict[str, str] = {}
    for item in error.errors(include_url=False):
        fields.setdefault(".".join(str(part) for part in item["loc"]) or root, item["msg"])
    return fields


class AuthenticationError(CapgateError):
    status = 401
    code = "invalid_api_key"
    message = "Invalid API key"

    def headers(self) -> dict[str, str]:
        challenge = f'Bearer error="invalid_token", error_description="{self.message}"'
        return {"WWW-Authenticate": challenge, **self.extra_headers}


class MissingApiKey(AuthenticationError):
    code = "missing_api_key"
    message = "Missing API key"


class InvalidApiKey(AuthenticationError):
    pass


class RevokedApiKey(AuthenticationError):
    code = "revoked_api_key"
    message = "API key has been revoked"


class ExpiredApiKey(AuthenticationError):
    code = "expired_api_key"
    message = "API key has expired"


class ConflictingCredentials(AuthenticationError):
    code = "conflicting_credentials"
    message = "Conflicting credentials"


class InsufficientScope(CapgateError):
    status = 403
    code = "insufficient_scope"

    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"Missing required scope: {scope}")

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{self.scope}"'}


class NotFound(CapgateError):
    status = 404
    code = "not_found"
    message = "Not found"


class InvalidRequest(CapgateError):
    status = 400
    code = "invalid_request"
    message = "Invalid request body"


class Conflict(CapgateError):
    status = 409
    code = "conflict"
    message = "Conflict"


class PayloadTooLarge(CapgateError):
    status = 413
    code = "payload_too_large"
    message = "Request body too large"


class RateLimited(CapgateError):
    status = 429
    code = "rate_limited"
    message = "Rate limit exceeded"
