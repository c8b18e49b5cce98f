"""JSON Schemas of the Runtime API's bodies, for /openapi.json."""

from __future__ import annotations

from typing import Any

NULLABLE_STRING: dict[str, Any] = {"type": ["string", "null"]}
TIMESTAMP: dict[str, Any] = {"type": "string", "format": "date-time"}

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "human-readable message"},
        "code": {"type": "string", "description": "stable machine-readable code"},
        "details": {"type": "object", "description": "what the caller can act on, e.g. field name → problem"},
    },
}

CAPABILITY: dict[str, Any] = {
    "type": "object",
    "required": ["name", "kind", "description", "parameters", "isReadOnly", "supportsIdempotency", "accounts"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["memory", "integration"]},
        "description": {"type": "string"},
        "parameters": {"type": "object", "description": "JSON Schema of the tool input"},
        "isReadOnly": {"type": "boolean"},
        "supportsIdempotency": {"type": "boolean"},
        "accounts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["connectedAccountId", "integrationId", "backend"],
                "properties": {
                    "connectedAccountId": {"type": "string"},
                    "integrationId": {"type": "string"},
                    "backend": {"type": "string", "enum": ["mcp-http", "mcp-stdio"]},
                },
            },
        },
    },
}

CAPABILITIES: dict[str, Any] = {
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

SESSION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "title", "source", "interactionMode", "status", "createdAt", "updatedAt", "archivedAt"],
    "properties": {
        "id": {"type": "string"},
        "title": {"type": "string"},
        "source": {"type": "string", "description": "api, mcp, …"},
        "interactionMode": {"type": "string", "enum": ["autonomous", "interactive"]},
        "status": {"type": "string", "enum": ["active", "archived"]},
        "createdAt": TIMESTAMP,
        "updatedAt": TIMESTAMP,
        "archivedAt": {"type": ["string", "null"], "format": "date-time"},
    },
}

SESSION_CAPABILITIES: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/Capabilities"},
        {
            "type": "object",
            "required": ["session"],
            "properties": {"session": {"$ref": "#/components/schemas/Session"}},
        },
    ]
}

SESSION_LIST: dict[str, Any] = {
    "type": "object",
    "required": ["sessions", "nextCursor"],
    "properties": {
        "sessions": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}},
        "nextCursor": {**NULLABLE_STRING, "description": "pass as ?cursor= for the next page; null on the last"},
    },
}

SESSION_CREATE: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 200, "default": "Agent Runtime Session"},
        "interactionMode": {"type": "string", "enum": ["autonomous", "interactive"]},
    },
}

INVOKE_REQUEST: dict[str, Any] = {
    "type": "object",
    "properties": {
        "input": {"type": "object", "description": "the tool's input; see its parameters", "default": {}},
        "sessionId": {"type": "string", "maxLength": 64, "description": "run inside this session; default: a new one"},
        "connectedAccountId": {"type": "string", "maxLength": 64},
    },
}

INVOCATION: dict[str, Any] = {
    "type": "object",
    "description": "A tool that failed still answers 200: status failed, isError true, error holds the message.",
    "required": ["executionId", "sessionId", "status", "isError", "result", "error"],
    "properties": {
        "executionId": {"type": "string"},
        "sessionId": {"type": "string"},
        "status": {"type": "string", "enum": ["succeeded", "failed"]},
        "isError": {"type": "boolean"},
        "result": {"description": "the tool's JSON result; null when failed"},
        "error": {**NULLABLE_STRING, "description": "the failure message (never a stack trace); null on success"},
    },
}

EXECUTION: dict[str, Any] = {
    "type": "object",
    "required": ["id", "sessionId", "toolName", "status", "source", "startedAt", "finishedAt", "isError"],
    "properties": {
        "id": {"type": "string"},
        "sessionId": {"type": "string"},
        "toolName": {"type": "string"},
        "status": {"type": "string", "enum": ["running", "succeeded", "failed", "interrupted"]},
        "source": {"type": "string"},
        "connectedAccountId": NULLABLE_STRING,
        "startedAt": TIMESTAMP,
        "finishedAt": {"type": ["string", "null"], "format": "date-time"},
        "durationMs": {"type": ["number", "null"]},
        "isError": {"type": "boolean"},
        "result": {"description": "the tool's result when succeeded"},
        "error": NULLABLE_STRING,
    },
}

EXECUTION_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "The JSON in each SSE `data:` line. The SSE `event:` is `type`, the SSE `id:` is `id`.",
    "required": ["id", "executionId", "type", "createdAt", "data"],
    "properties": {
        "id": {"type": "integer", "description": "1, 2, 3… within the execution; send as Last-Event-ID to resume"},
        "executionId": {"type": "string"},
        "type": {"type": "string", "enum": ["started", "progress", "log", "completed", "failed", "interrupted"]},
        "createdAt": TIMESTAMP,
        "data": {"type": "object"},
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": ERROR,
    "Capability": CAPABILITY,
    "Capabilities": CAPABILITIES,
    "SessionCapabilities": SESSION_CAPABILITIES,
    "Session": SESSION,
    "SessionList": SESSION_LIST,
    "SessionCreate": SESSION_CREATE,
    "InvokeRequest": INVOKE_REQUEST,
    "Invocation": INVOCATION,
    "Execution": EXECUTION,
    "ExecutionEvent": EXECUTION_EVENT,
}
