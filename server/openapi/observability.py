"""OpenAPI paths of the decision log, key explanations and /metrics."""

from __future__ import annotations

from typing import Any

from server.openapi.keys import KEY_ID, KEY_SECURITY, errors, json_response

DECISION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "time": {"type": "string", "format": "date-time"},
        "requestId": {"type": ["string", "null"]},
        "traceId": {"type": ["string", "null"]},
        "keyId": {"type": ["string", "null"]},
        "route": {"type": "string", "description": "HTTP route template or MCP method"},
        "tool": {"type": ["string", "null"]},
        "outcome": {"type": "string", "enum": ["allowed", "refused"]},
        "reason": {"type": "string", "description": "allowed, invalid_api_key, tool_not_granted, rate_limited, ..."},
        "rule": {"type": "string", "description": "the rule that decided, in words"},
        "policyRevision": {"type": ["integer", "null"]},
        "count": {"type": "integer", "description": "decisions this record stands for (aggregated when above 1)"},
    },
    "required": ["id", "time", "route", "outcome", "reason", "rule", "count"],
}
DECISION_LIST = {
    "type": "object",
    "properties": {
        "decisions": {"type": "array", "items": {"$ref": "#/components/schemas/Decision"}},
        "nextCursor": {"type": ["string", "null"]},
    },
}
EXPLANATION = {
    "type": "object",
    "properties": {
        "keyId": {"type": "string"},
        "tool": {"type": "string"},
        "allowed": {"type": "boolean"},
        "reason": {"type": "string"},
        "rule": {"type": "string"},
        "policyRevision": {"type": "integer"},
    },
}
SCHEMAS = {"Decision": DECISION, "DecisionList": DECISION_LIST, "KeyExplanation": EXPLANATION}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "schema": schema, "description": description}


def observability_paths() -> dict[str, Any]:
    managed = {"security": KEY_SECURITY}
    return {
        "/api/audit/decisions": {
            "get": {
                **managed,
                "summary": "Authorization decisions of the organization, newest first (needs keys:manage)",
                "parameters": [
                    _query("keyId", {"type": "string"}, "only this key's decisions"),
                    _query("tool", {"type": "string"}, "only decisions about this tool"),
                    _query("outcome", {"type": "string", "enum": ["allowed", "refused"]}, "only this outcome"),
                    _query("since", {"type": "string", "format": "date-time"}, "at or after this time"),
                    _query("until", {"type": "string", "format": "date-time"}, "before this time"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}, "page size (default 100)"),
                    _query("cursor", {"type": "string"}, "nextCursor of the previous page"),
                ],
                "responses": {
                    "200": json_response({"$ref": "#/components/schemas/DecisionList"}, "one page"),
                    **errors("400", "401", "403"),
                },
            }
        },
        "/api/keys/{keyId}/explain": {
            "parameters": KEY_ID,
            "get": {
                **managed,
                "summary": "Whether the key may call the tool now, and the rule that says so (needs keys:manage)",
                "parameters": [_query("tool", {"type": "string", "minLength": 1, "maxLength": 200}, "a tool name")],
                "responses": {
                    "200": json_response({"$ref": "#/components/schemas/KeyExplanation"}, "the decision"),
                    **errors("400", "401", "403", "404"),
                },
            },
        },
        "/metrics": {
            "get": {
                **managed,
                "summary": "Prometheus metrics of this process (needs metrics:read, an operator scope)",
                "responses": {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **errors("401", "403"),
                },
            }
        },
    }
