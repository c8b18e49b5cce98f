"""OpenAPI path items of the key-management and audit routes, and the rate-limit headers."""

from __future__ import annotations

from typing import Any

KEY_SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
ERROR_REF = {"$ref": "#/components/schemas/Error"}

KEY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "name": {"type": "string"},
        "prefix": {"type": "string", "description": "first 12 characters of the key"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "allowedTools": {"type": ["array", "null"], "items": {"type": "string"}},
        "createdBy": {"type": ["string", "null"]},
        "createdAt": {"type": "string", "format": "date-time"},
        "expiresAt": {"type": ["string", "null"], "format": "date-time"},
        "revoked": {"type": "boolean"},
        "revokedAt": {"type": ["string", "null"], "format": "date-time"},
        "lastUsedAt": {"type": ["string", "null"], "format": "date-time", "description": "accurate to a minute"},
        "rateLimitPerSecond": {"type": ["integer", "null"]},
        "dailyQuota": {"type": ["integer", "null"]},
    },
}
NEW_KEY_SCHEMA: dict[str, Any] = {
    "allOf": [
        {"$ref": "#/components/schemas/ApiKey"},
        {"type": "object", "properties": {"key": {"type": "string", "description": "the full key, shown only once"}}},
    ]
}
KEY_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string"}, "default": ["runtime"]},
        "allowedTools": {"type": "array", "items": {"type": "string"}},
        "expiresAt": {"type": "string", "format": "date-time"},
        "expiresInDays": {"type": "integer", "minimum": 1, "maximum": 365},
    },
}
KEY_UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "scopes": {"type": "array", "items": {"type": "string"}},
        "allowedTools": {"type": ["array", "null"], "items": {"type": "string"}},
        "rateLimitPerSecond": {"type": ["integer", "null"], "minimum": 1},
        "dailyQuota": {"type": ["integer", "null"], "minimum": 1},
    },
}
AUDIT_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "createdAt": {"type": "string", "format": "date-time"},
        "actor": {"type": "string"},
        "action": {"type": "string", "examples": ["key.created", "key.revoked", "auth.failed"]},
        "keyId": {"type": ["string", "null"]},
        "source": {"type": ["string", "null"]},
        "details": {"type": ["object", "null"]},
    },
}
SCHEMAS = {
    "ApiKey": KEY_SCHEMA,
    "NewApiKey": NEW_KEY_SCHEMA,
    "ApiKeyCreate": KEY_CREATE_SCHEMA,
    "ApiKeyUpdate": KEY_UPDATE_SCHEMA,
    "AuditEvent": AUDIT_EVENT_SCHEMA,
}

RATE_LIMIT_HEADERS: dict[str, Any] = {
    name: {"schema": {"type": "string"}, "description": description}
    for name, description in {
        "X-RateLimit-Limit": "limit of the window with fewer requests left",
        "X-RateLimit-Remaining": "requests left in that window",
        "RateLimit-Policy": 'IETF draft: "per-second";q=…;w=1, "daily";q=…;w=86400',
        "RateLimit": 'IETF draft: "per-second";r=…;t=…, "daily";r=…;t=…',
    }.items()
}
RATE_LIMITED = {
    "description": "rate limit exceeded",
    "headers": {**RATE_LIMIT_HEADERS, "Retry-After": {"schema": {"type": "integer"}}},
    "content": {"application/json": {"schema": ERROR_REF}},
}


def json_response(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: str) -> dict[str, Any]:
    return {status: json_response(ERROR_REF, "error") for status in statuses}


def _body(ref: str, required: bool = True) -> dict[str, Any]:
    schema = {"$ref": f"#/components/schemas/{ref}"}
    return {"required": required, "content": {"application/json": {"schema": schema}}}


KEY_ID = [{"name": "keyId", "in": "path", "required": True, "schema": {"type": "string"}}]
KEY_REF = {"$ref": "#/components/schemas/ApiKey"}
NEW_KEY_REF = {"$ref": "#/components/schemas/NewApiKey"}
KEY_LIST = {"type": "object", "properties": {"keys": {"type": "array", "items": KEY_REF}}}
AUDIT_LIST = {
    "type": "object",
    "properties": {"events": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEvent"}}},
}


def key_paths() -> dict[str, Any]:
    """Every route here needs a key with keys:manage (or Basic auth): each may answer 401 and 403."""
    paths = _key_paths()
    for item in paths.values():
        for operation in item.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"] = {**errors("401", "403"), **operation["responses"]}
    return paths


def _key_paths() -> dict[str, Any]:
    managed = {"security": KEY_SECURITY}
    return {
        "/api-keys": {
            "post": {
                "summary": "Create a key with a user's email and password (HTTP Basic)",
                "security": [{"basic": []}],
                "requestBody": _body("ApiKeyCreate"),
                "responses": {
                    "201": json_response(NEW_KEY_REF, "created"),
                    **errors("400", "401", "403", "409", "429"),
                },
            }
        },
        "/api/keys": {
            "get": {
                **managed,
                "summary": "List the organization's keys",
                "responses": {"200": json_response(KEY_LIST, "keys")},
            },
            "post": {
                **managed,
                "summary": "Create a key",
                "requestBody": _body("ApiKeyCreate"),
                "responses": {"201": json_response(NEW_KEY_REF, "created"), **errors("400", "401", "403", "409")},
            },
        },
        "/api/keys/{keyId}": {
            "parameters": KEY_ID,
            "get": {
                **managed,
                "summary": "One key",
                "responses": {"200": json_response(KEY_REF, "key"), **errors("404")},
            },
            "patch": {
                **managed,
                "summary": "Change name, scopes, allowed tools or limits",
                "requestBody": _body("ApiKeyUpdate"),
                "responses": {"200": json_response(KEY_REF, "updated"), **errors("400", "403", "404", "409")},
            },
            "delete": {
                **managed,
                "summary": "Revoke",
                "parameters": [{"name": "terminateStreams", "in": "query", "schema": {"type": "boolean"}}],
                "responses": {"200": json_response(KEY_REF, "revoked"), **errors("400", "404")},
            },
        },
        "/api/keys/{keyId}/rotate": {
            "parameters": KEY_ID,
            "post": {
                **managed,
                "summary": "Replace with a new key; the old one works for overlapSeconds (default 86400)",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {"type": "object", "properties": {"overlapSeconds": {"type": "integer"}}}
                        }
                    },
                },
                "responses": {"201": json_response(NEW_KEY_REF, "new key"), **errors("400", "403", "404", "409")},
            },
        },
        "/api/audit": {
            "get": {
                **managed,
                "summary": "Audit log of the organization, newest first",
                "parameters": [
                    {"name": name, "in": "query", "schema": {"type": kind}}
                    for name, kind in (
                        ("action", "string"),
                        ("keyId", "string"),
                        ("limit", "integer"),
                        ("before", "integer"),
                    )
                ],
                "responses": {"200": json_response(AUDIT_LIST, "events"), **errors("400")},
            }
        },
    }
