"""/openapi.json: the OpenAPI 3.1 description of every route, its bodies and its error bodies."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.openapi.integrations import SCHEMAS as INTEGRATION_SCHEMAS
from server.openapi.integrations import integration_paths
from server.openapi.keys import RATE_LIMIT_HEADERS, RATE_LIMITED, key_paths
from server.openapi.keys import SCHEMAS as KEY_SCHEMAS
from server.openapi.observability import SCHEMAS as OBSERVABILITY_SCHEMAS
from server.openapi.observability import observability_paths
from server.openapi.schemas import SCHEMAS
from server.routes.routing import PublicRoute

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


AUTH_ERRORS = {
    "401": _error("missing, invalid, revoked or expired API key, or conflicting credentials"),
    "403": _error("the key lacks the route's scope"),
    "429": _error("rate limit exceeded"),
}
STATUS_SCHEMA: dict[str, Any] = {"type": "object", "properties": {"status": {"type": "string"}}}


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "minLength": 1, "maxLength": 200},
    }


TOOL_NAME = _path("toolName", "a tool name from capabilities")
SESSION_ID = _path("sessionId", "a session id")
EXECUTION_ID = _path("executionId", "an execution id")
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "same key and body within 24 h: the first response, the tool not run again (per organization)",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "resume after this event id",
    "schema": {"type": "string", "pattern": "^[0-9]{1,12}$"},
}


def _operation(summary: str, responses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A Runtime API operation: key required, rate-limited (headers on success, 429 past the limit)."""
    limited = {
        status: {**response, "headers": RATE_LIMIT_HEADERS} if status.startswith("2") else response
        for status, response in responses.items()
    }
    return {
        "summary": summary,
        "security": SECURITY,
        "responses": {**limited, **AUTH_ERRORS, "429": RATE_LIMITED},
        **extra,
    }


def _invoke(summary: str, parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return _operation(
        summary,
        {
            "200": _json(_ref("Invocation"), "the tool ran (also when it failed: see isError)"),
            "400": _error("invalid_request: bad body or tool input; details names the fields"),
            "404": _error("not_found: unknown tool (or one the key may not see), or unknown session"),
            "409": _error("session_archived, idempotency_key_reused, idempotency_key_interrupted, or account_required"),
            "413": _error("payload_too_large"),
        },
        parameters=[*parameters, IDEMPOTENCY_KEY],
        requestBody={"required": False, "content": {"application/json": {"schema": _ref("InvokeRequest")}}},
    )


def build_document() -> dict[str, Any]:
    capabilities_get = _operation("Tools this API key may use", {"200": _json(_ref("Capabilities"), "capabilities")})
    not_found_session = {"404": _error("not_found: unknown session")}
    return {
        "openapi": "3.1.0",
        "info": {"title": "capgate", "version": "0.1.0"},
        "paths": {
            "/api/runtime/capabilities": {"get": capabilities_get},
            "/capabilities": {"get": {**capabilities_get, "summary": "Alias of /api/runtime/capabilities"}},
            "/api/runtime/tools/{toolName}": {
                "post": _invoke("Run a tool (in a new session unless sessionId)", [TOOL_NAME])
            },
            "/api/runtime/sessions": {
                "post": _operation(
                    "Create a session",
                    {
                        "201": _json(_ref("Session"), "the new session"),
                        "400": _error("invalid_request"),
                        "413": _error("payload_too_large"),
                    },
                    requestBody={"required": False, "content": {"application/json": {"schema": _ref("SessionCreate")}}},
                ),
                "get": _operation(
                    "The organization's sessions, newest first",
                    {"200": _json(_ref("SessionList"), "one page"), "400": _error("invalid_request: limit or cursor")},
                    parameters=[
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {"name": "status", "in": "query", "schema": {"type": "string", "enum": ["active", "archived"]}},
                    ],
                ),
            },
            "/api/runtime/sessions/{sessionId}": {
                "get": _operation(
                    "One session",
                    {"200": _json(_ref("Session"), "the session"), **not_found_session},
                    parameters=[SESSION_ID],
                )
            },
            "/api/runtime/sessions/{sessionId}/archive": {
                "post": _operation(
                    "Archive a session: it refuses further invocations",
                    {"200": _json(_ref("Session"), "the archived session"), **not_found_session},
                    parameters=[SESSION_ID],
                )
            },
            "/api/runtime/sessions/{sessionId}/capabilities": {
                "get": _operation(
                    "Capabilities as seen from a session",
                    {"200": _json(_ref("SessionCapabilities"), "capabilities and the session"), **not_found_session},
                    parameters=[SESSION_ID],
                )
            },
            "/api/runtime/sessions/{sessionId}/tools/{toolName}": {
                "post": _invoke("Run a tool inside an existing session", [SESSION_ID, TOOL_NAME])
            },
            "/api/runtime/executions/{executionId}": {
                "get": _operation(
                    "An execution record",
                    {"200": _json(_ref("Execution"), "the execution"), "404": _error("not_found: unknown execution")},
                    parameters=[EXECUTION_ID],
                )
            },
            "/api/runtime/executions/{executionId}/events": {
                "get": _operation(
                    "Server-Sent Events of an execution: stored ones, then live ones, until the terminal event",
                    {
                        "200": {
                            "description": "text/event-stream; each data line is an ExecutionEvent",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "400": _error("invalid_request: Last-Event-ID"),
                        "404": _error("not_found: unknown execution"),
                    },
                    parameters=[EXECUTION_ID, LAST_EVENT_ID],
                )
            },
            **counted_as_requests({**key_paths(), **observability_paths()}),
            **integration_paths(),
            "/healthz": {"get": {"summary": "Process is up", "responses": {"200": _json(STATUS_SCHEMA, "up")}}},
            "/readyz": {
                "get": {
                    "summary": "Database reachable",
                    "responses": {"200": _json(STATUS_SCHEMA, "ready"), "503": _json(STATUS_SCHEMA, "not ready")},
                }
            },
        },
        "components": {
            "schemas": {**SCHEMAS, **KEY_SCHEMAS, **INTEGRATION_SCHEMAS, **OBSERVABILITY_SCHEMAS},
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

    return PublicRoute("/openapi.json", openapi)


def counted_as_requests(paths: dict[str, Any]) -> dict[str, Any]:
    """Key-management routes count toward the key's rate limit (issue 14 item 7): they may answer 429 too."""
    for path, item in paths.items():
        if not path.startswith("/api/keys"):
            continue
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"].setdefault("429", RATE_LIMITED)
    return paths
