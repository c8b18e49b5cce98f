"""Wire shapes of the key-management routes: request bodies in, camelCase metadata out."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from auth.dbtypes import iso
from auth.errors import InvalidRequest
from auth.lifecycle import MAX_KEY_LIFETIME
from auth.models import ApiKey, AuditEvent

MAX_OVERLAP_SECONDS = 30 * 86_400
DEFAULT_OVERLAP_SECONDS = 86_400


class KeyCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr
    scopes: list[StrictStr] = Field(default_factory=lambda: ["runtime"])
    allowed_tools: list[StrictStr] | None = Field(default=None, alias="allowedTools")
    expires_at: AwareDatetime | None = Field(default=None, alias="expiresAt")
    expires_in_days: StrictInt | None = Field(default=None, alias="expiresInDays")


class KeyUpdateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: StrictStr | None = None
    scopes: list[StrictStr] | None = None
    allowed_tools: list[StrictStr] | None = Field(default=None, alias="allowedTools")
    rate_limit_per_second: StrictInt | None = Field(default=None, alias="rateLimitPerSecond")
    daily_quota: StrictInt | None = Field(default=None, alias="dailyQuota")


class RotateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    overlap_seconds: StrictInt = Field(default=DEFAULT_OVERLAP_SECONDS, alias="overlapSeconds")


def resolve_expiry(body: KeyCreateBody, now: datetime) -> datetime | None:
    if body.expires_at is not None and body.expires_in_days is not None:
        message = "Give either expiresAt or expiresInDays, not both"
        raise InvalidRequest(message, details={"expiresAt": message, "expiresInDays": message})
    if body.expires_in_days is not None:
        if not 1 <= body.expires_in_days <= MAX_KEY_LIFETIME.days:
            message = f"expiresInDays must be between 1 and {MAX_KEY_LIFETIME.days}"
            raise InvalidRequest(message, details={"expiresInDays": message})
        return now + timedelta(days=body.expires_in_days)
    if body.expires_at is not None:
        if body.expires_at <= now:
            raise InvalidRequest("expiresAt must be in the future", details={"expiresAt": "must be in the future"})
        if body.expires_at > now + MAX_KEY_LIFETIME:
            message = f"expiresAt must be at most {MAX_KEY_LIFETIME.days} days from now"
            raise InvalidRequest(message, details={"expiresAt": message})
    return body.expires_at


def key_public(key: ApiKey, *, last_used_at: datetime | None) -> dict[str, Any]:
    return {
        "id": key.id,
        "name": key.name,
        "prefix": key.display_prefix,
        "scopes": list(key.scopes),
        "allowedTools": list(key.allowed_tools) if key.allowed_tools is not None else None,
        "createdBy": key.created_by,
        "createdAt": iso(key.created_at),
        "expiresAt": iso(key.expires_at),
        "revoked": key.revoked_at is not None,
        "revokedAt": iso(key.revoked_at),
        "lastUsedAt": iso(last_used_at),
        "rateLimitPerSecond": key.rate_limit_per_second,
        "dailyQuota": key.daily_quota,
    }


def audit_public(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "createdAt": iso(event.created_at),
        "actor": event.actor,
        "action": event.action,
        "keyId": event.key_id,
        "source": event.source,
        "details": event.details,
    }
