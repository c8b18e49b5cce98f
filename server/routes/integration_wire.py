"""Wire shapes of the integration routes: request bodies in, camelCase out, never a credential."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from auth.dbtypes import iso
from server.integrations.models import ConnectedAccount, Integration

Body = ConfigDict(extra="forbid", populate_by_name=True)


class IntegrationCreateBody(BaseModel):
    model_config = Body

    id: StrictStr
    title: StrictStr | None = Field(default=None, max_length=200)
    transport: StrictStr = "http"
    url: StrictStr | None = None
    command: list[StrictStr] | None = None
    credential_header: StrictStr | None = Field(default="Authorization", alias="credentialHeader")
    credential_template: StrictStr = Field(default="Bearer {secret}", alias="credentialTemplate")
    credential_env: StrictStr | None = Field(default=None, alias="credentialEnv")
    timeout_seconds: float = Field(default=60.0, alias="timeoutSeconds")


class IntegrationUpdateBody(BaseModel):
    model_config = Body

    title: StrictStr | None = Field(default=None, max_length=200)
    url: StrictStr | None = None
    command: list[StrictStr] | None = None
    credential_header: StrictStr | None = Field(default=None, alias="credentialHeader")
    credential_template: StrictStr | None = Field(default=None, alias="credentialTemplate")
    credential_env: StrictStr | None = Field(default=None, alias="credentialEnv")
    timeout_seconds: float | None = Field(default=None, alias="timeoutSeconds")


class AccountCreateBody(BaseModel):
    model_config = Body

    integration_id: StrictStr = Field(alias="integrationId")
    label: StrictStr
    credential: StrictStr = Field(repr=False)


class AccountUpdateBody(BaseModel):
    model_config = Body

    label: StrictStr | None = None
    status: StrictStr | None = None
    credential: StrictStr | None = Field(default=None, repr=False)


def integration_public(row: Integration) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": row.title,
        "transport": row.transport,
        "url": row.url,
        "command": row.command,
        "credentialHeader": row.credential_header,
        "credentialTemplate": row.credential_template,
        "credentialEnv": row.credential_env,
        "timeoutSeconds": row.timeout_seconds,
        "createdBy": row.created_by,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
    }


def account_public(row: ConnectedAccount) -> dict[str, Any]:
    return {
        "id": row.id,
        "integrationId": row.integration_id,
        "label": row.label,
        "status": row.status,
        "lastError": row.last_error,
        "tools": [tool.get("name") for tool in row.tools or ()],
        "toolsRefreshedAt": iso(row.tools_refreshed_at),
        "createdBy": row.created_by,
        "updatedBy": row.updated_by,
        "createdAt": iso(row.created_at),
        "updatedAt": iso(row.updated_at),
    }
