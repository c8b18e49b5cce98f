"""OpenAPI path items of the integration routes (scope integrations:manage)."""

from __future__ import annotations

from typing import Any

SECURITY: list[dict[str, list[str]]] = [{"bearer": []}, {"apiKey": []}]
ERROR_REF = {"$ref": "#/components/schemas/Error"}
NULLABLE_STRING = {"type": ["string", "null"]}
NULLABLE_TIME = {"type": ["string", "null"], "format": "date-time"}

INTEGRATION_FIELDS: dict[str, Any] = {
    "title": {"type": "string", "maxLength": 200},
    "url": {"type": "string", "description": "Streamable HTTP endpoint of the upstream (transport http)"},
    "command": {"type": "array", "items": {"type": "string"}, "description": "program and arguments (stdio)"},
    "credentialHeader": {"type": "string", "default": "Authorization"},
    "credentialTemplate": {"type": "string", "default": "Bearer {secret}"},
    "credentialEnv": {"type": "string", "description": "environment variable a stdio upstream reads"},
    "timeoutSeconds": {"type": "number", "exclusiveMinimum": 0, "maximum": 3600},
}
SCHEMAS: dict[str, Any] = {
    "Integration": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "transport": {"type": "string", "enum": ["http", "stdio"]},
            **INTEGRATION_FIELDS,
            "url": NULLABLE_STRING,
            "command": {"type": ["array", "null"], "items": {"type": "string"}},
            "credentialHeader": NULLABLE_STRING,
            "credentialEnv": NULLABLE_STRING,
            "createdBy": NULLABLE_STRING,
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
        },
    },
    "IntegrationCreate": {
        "type": "object",
        "required": ["id"],
        "additionalProperties": False,
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z][a-z0-9]{0,31}$", "description": "prefix of its tools"},
            "transport": {
                "type": "string",
                "enum": ["http", "stdio"],
                "default": "http",
                "description": "stdio runs a command on the server: only the CLI may add one (403 here)",
            },
            **INTEGRATION_FIELDS,
        },
    },
    "IntegrationUpdate": {"type": "object", "additionalProperties": False, "properties": INTEGRATION_FIELDS},
    "ConnectedAccount": {
        "type": "object",
        "description": "never includes the credential",
        "properties": {
            "id": {"type": "string"},
            "integrationId": {"type": "string"},
            "label": {"type": "string"},
            "status": {"type": "string", "enum": ["ok", "error", "disabled"]},
            "lastError": NULLABLE_STRING,
            "tools": {"type": "array", "items": {"type": "string"}},
            "toolsRefreshedAt": NULLABLE_TIME,
            "createdBy": NULLABLE_STRING,
            "updatedBy": NULLABLE_STRING,
            "createdAt": {"type": "string", "format": "date-time"},
            "updatedAt": {"type": "string", "format": "date-time"},
        },
    },
    "ConnectedAccountCreate": {
        "type": "object",
        "required": ["integrationId", "label", "credential"],
        "additionalProperties": False,
        "properties": {
            "integrationId": {"type": "string"},
            "label": {"type": "string", "maxLength": 200},
            "credential": {"type": "string", "writeOnly": True},
        },
    },
    "ConnectedAccountUpdate": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "label": {"type": "string", "maxLength": 200},
            "status": {"type": "string", "enum": ["ok", "disabled"]},
            "credential": {"type": "string", "writeOnly": True},
        },
    },
    "AccountTest": {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "error": NULLABLE_STRING,
            "tools": {"type": "array", "items": {"type": "string"}},
        },
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _operation(summary: str, responses: dict[str, Any], body: str | None = None) -> dict[str, Any]:
    errors = {status: _json(ERROR_REF, "error") for status in ("400", "401", "403", "404", "409")}
    operation: dict[str, Any] = {"security": SECURITY, "summary": summary, "responses": {**errors, **responses}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(body)}}}
    return operation


def _id(name: str) -> list[dict[str, Any]]:
    return [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}]


def integration_paths() -> dict[str, Any]:
    listing = {"type": "object", "properties": {"integrations": {"type": "array", "items": _ref("Integration")}}}
    accounts = {"type": "object", "properties": {"accounts": {"type": "array", "items": _ref("ConnectedAccount")}}}
    gone = {"204": {"description": "deleted"}}
    return {
        "/api/integrations": {
            "get": _operation("The organization's integrations", {"200": _json(listing, "integrations")}),
            "post": _operation(
                "Add an upstream MCP server", {"201": _json(_ref("Integration"), "created")}, "IntegrationCreate"
            ),
        },
        "/api/integrations/{integrationId}": {
            "parameters": _id("integrationId"),
            "get": _operation("One integration", {"200": _json(_ref("Integration"), "integration")}),
            "patch": _operation(
                "Change an integration", {"200": _json(_ref("Integration"), "updated")}, "IntegrationUpdate"
            ),
            "delete": _operation("Remove an integration and its accounts", gone),
        },
        "/api/accounts": {
            "get": {
                **_operation("The organization's connected accounts", {"200": _json(accounts, "accounts")}),
                "parameters": [{"name": "integrationId", "in": "query", "schema": {"type": "string"}}],
            },
            "post": _operation(
                "Connect an account (its tools are listed at once when the upstream answers)",
                {"201": _json(_ref("ConnectedAccount"), "connected")},
                "ConnectedAccountCreate",
            ),
        },
        "/api/accounts/{accountId}": {
            "parameters": _id("accountId"),
            "get": _operation("One connected account", {"200": _json(_ref("ConnectedAccount"), "account")}),
            "patch": _operation(
                "Relabel, disable/enable, or replace the credential",
                {"200": _json(_ref("ConnectedAccount"), "updated")},
                "ConnectedAccountUpdate",
            ),
            "delete": _operation("Remove a connected account", gone),
        },
        "/api/accounts/{accountId}/test": {
            "parameters": _id("accountId"),
            "post": _operation("Connect to the upstream and list its tools", {"200": _json(_ref("AccountTest"), "")}),
        },
    }
