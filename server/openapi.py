"""/openapi.json: the OpenAPI 3.1 description of every route."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.openapi_keys import RATE_LIMIT_HEADERS, RATE_LIMITED, SCHEMAS, key_paths
from server.routing import public_route

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "human-readable message"},
        "code": {"type": "string", "description": "stable machine-readable code"},
        "details": {"type": "object", "description": "what the caller can act on"},
    },
}

CAPABILITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name", "kind", "description", "parameters", "isReadOnly", "supportsIdempotency", "accounts"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["memory", "integration"]},
        "description": {"type": "string"},
        "parameters": {"type": "object", "description": "JSON Schema of the tool input"},
        "isReadOnly": {"type": "boolean"},
        "supportsIdempotency": {"type": "boolean"},
        "accounts": {"type": "array", "items": {"type": "string"}},
    },
}

CAPABILITIES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": [
        "capabilities",
        "sessionCreateUrl",
        "toolInvokeUrlTemplate",
        "sessionToolInvokeUrlTemplate",
        "executionEventsUrlTemplate",
    ],
    "properties": {
        "capabilities": {"type": "array", "items": {"$ref": "#/components/schemas/Capability"}},
        "sessionCreateUrl": {"type": "string"},
        "toolInvokeUrlTemplate": {"type": "string"},
        "sessionToolInvokeUrlTemplate": {"type": "string"},
        "executionEventsUrlTemplate": {"type": "string"},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json({"$ref": "#/components/schemas/Error"}, description)


AUTH_ERRORS = {
    "401": _error("missing, invalid, revoked or expired API key, or conflicting credentials"),
    "403": _error("the key lacks the route's scope"),
}

STATUS_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"status": {"type": "string"}}}


def build_document() -> dict[str, Any]:
    capabilities_get = {
        "summary": "Tools this API key may use",
        "security": [{"bearer": []}, {"apiKey": []}],
        "responses": {
            "200": {
                **_json({"$ref": "#/components/schemas/Capabilities"}, "capabilities"),
                "headers": RATE_LIMIT_HEADERS,
            },
            **AUTH_ERRORS,
            "429": RATE_LIMITED,
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "capgate", "version": "0.1.0"},
        "paths": {
            "/api/runtime/capabilities": {"get": capabilities_get},
            "/capabilities": {"get": {**capabilities_get, "summary": "Alias of /api/runtime/capabilities"}},
            "/healthz": {"get": {"summary": "Process is up", "responses": {"200": _json(STATUS_SCHEMA, "up")}}},
            "/readyz": {
                "get": {
                    "summary": "Database reachable",
                    "responses": {"200": _json(STATUS_SCHEMA, "ready"), "503": _json(STATUS_SCHEMA, "not ready")},
                }
            },
            **key_paths(),
        },
        "components": {
            "schemas": {
                "Error": ERROR_SCHEMA,
                "Capability": CAPABILITY_SCHEMA,
                "Capabilities": CAPABILITIES_SCHEMA,
                **SCHEMAS,
            },
            "securitySchemes": {
                "basic": {"type": "http", "scheme": "basic"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
            },
        },
    }


def openapi_route() -> Route:
    document = build_document()

    async def openapi(_request: Request) -> JSONResponse:
        return JSONResponse(document)

    return public_route("/openapi.json", openapi)
