"""The cached, immutable view of a key that verification works from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from auth.models import ApiKey


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    organization_id: str
    name: str
    scopes: tuple[str, ...]
    allowed_tools: tuple[str, ...] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    updated_at: datetime
    key_hash: str
    streams_terminated_at: datetime | None = None
    policy_revision: int = 1
    replaced_by: str | None = None

    @classmethod
    def from_row(cls, row: ApiKey) -> KeyRecord:
        return cls(
            key_id=row.id,
            organization_id=row.organization_id,
            name=row.name,
            scopes=tuple(row.scopes),
            allowed_tools=tuple(row.allowed_tools) if row.allowed_tools is not None else None,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            updated_at=row.updated_at,
            key_hash=row.key_hash,
            streams_terminated_at=row.streams_terminated_at,
            policy_revision=row.policy_revision,
            replaced_by=row.replaced_by,
        )

    def __repr__(self) -> str:
        return f"KeyRecord(key_id={self.key_id!r}, organization_id={self.organization_id!r})"
