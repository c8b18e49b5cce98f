"""Console sessions: a random token in the cookie, only its SHA-256 in the database.

Every request reads the session together with its user, so a changed role or a deleted
user applies at once, and a session never grants more than the user's role. The CSRF
token is derived from the session token (HMAC), so it is never stored and dies with it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from auth.grants import Rights
from auth.models import Organization, User
from server.admin.models import AdminSession

MANAGERS = frozenset({"owner", "admin"})


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"capgate admin csrf", hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The user behind a console session, as the user is now."""

    session_id: str
    csrf: str
    user_id: str
    email: str
    role: str
    organization_id: str
    organization_name: str

    @property
    def actor_name(self) -> str:
        return f"user:{self.email}"  # as POST /api-keys names a user, so "created by" matches

    @property
    def manages_organization(self) -> bool:
        return self.role in MANAGERS

    @property
    def rights(self) -> Rights:
        return Rights.of_role(self.role)


async def open_session(
    session: AsyncSession, *, user: User, now: datetime, lifetime: timedelta, source: str | None
) -> str:
    """A new session for ``user``; returns the token for the cookie. Expired sessions are swept here."""
    await session.execute(delete(AdminSession).where(col(AdminSession.expires_at) <= now))
    token = secrets.token_urlsafe(32)
    session.add(
        AdminSession(id=token_digest(token), user_id=user.id, created_at=now, expires_at=now + lifetime, source=source)
    )
    await session.flush()
    return token


async def find_session(session: AsyncSession, *, token: str, now: datetime) -> SignedIn | None:
    query = (
        select(
            col(AdminSession.id),
            col(User.id),
            col(User.email),
            col(User.role),
            col(User.organization_id),
            col(Organization.name),
        )
        .join(User, col(User.id) == col(AdminSession.user_id))
        .join(Organization, col(Organization.id) == col(User.organization_id))
        .where(col(AdminSession.id) == token_digest(token), col(AdminSession.expires_at) > now)
    )
    row = (await session.execute(query)).first()
    if row is None:
        return None
    session_id, user_id, email, role, organization_id, organization_name = row
    return SignedIn(
        session_id=session_id,
        csrf=csrf_for(token),
        user_id=user_id,
        email=email,
        role=role,
        organization_id=organization_id,
        organization_name=organization_name,
    )


async def close_session(session: AsyncSession, *, session_id: str) -> None:
    await session.execute(delete(AdminSession).where(col(AdminSession.id) == session_id))


async def close_all_sessions(session: AsyncSession, *, user_id: str) -> int:
    """Sign-out everywhere: every browser of this user must sign in again."""
    result = await session.execute(delete(AdminSession).where(col(AdminSession.user_id) == user_id))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
