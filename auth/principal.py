"""The authenticated principal of a request, as the SDK and our routes see it."""

from __future__ import annotations

from datetime import datetime

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken

from auth import scopes as scope_names


class Principal(AuthenticatedUser):
    """A verified key. The SDK's AccessToken carries the key id, never the secret."""

    def __init__(
        self,
        *,
        key_id: str,
        organization_id: str,
        key_name: str,
        scopes: tuple[str, ...],
        allowed_tools: tuple[str, ...] | None,
        expires_at: datetime | None,
        policy_revision: int = 1,
        replaced: bool = False,
    ) -> None:
        expires = int(expires_at.timestamp()) if expires_at else None
        super().__init__(
            AccessToken(token=key_id, client_id=key_id, subject=key_id, scopes=list(scopes), expires_at=expires)
        )
        self.key_id = key_id
        self.organization_id = organization_id
        self.key_name = key_name
        self.key_scopes = scopes
        self.allowed_tools = allowed_tools
        self.policy_revision = policy_revision
        self.replaced = replaced
        """Replaced by rotation and in its overlap: still a runtime key, no longer a manager."""

    @property
    def read_only(self) -> bool:
        return scope_names.is_read_only(self.key_scopes)

    def has_scope(self, required: str) -> bool:
        return scope_names.grants(self.key_scopes, required)

    def __repr__(self) -> str:
        return f"Principal(key_id={self.key_id!r}, organization_id={self.organization_id!r})"
