"""Shared test helpers: settings for a throwaway data dir, keys made through the real store."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from auth import store
from auth.hashing import SecretHasher
from auth.models import Organization, User
from auth.verifier import KeyVerifier
from server.app import create_app
from server.settings import Settings

DEFAULT_PASSWORD = "correct horse battery staple"
FAST_ARGON2: dict[str, Any] = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}


def make_settings(data_dir: Path, database_url: str | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "pepper": "test-pepper-" + secrets.token_hex(8),
        "public_base_url": "http://capgate.test",
        "allowed_hosts": ["capgate.test", "127.0.0.1:*", "localhost:*"],
        **FAST_ARGON2,
        **overrides,
    }
    return Settings(**values)


@dataclass
class KeyFactory:
    """Creates organizations and keys through the same store functions the CLI uses."""

    sessions: async_sessionmaker[AsyncSession]
    hasher: SecretHasher
    verifier: KeyVerifier

    async def organization(self, name: str | None = None) -> Organization:
        async with self.sessions.begin() as session:
            return await store.create_organization(session, name=name or f"org-{secrets.token_hex(4)}")

    async def key(
        self,
        organization: Organization,
        *,
        scopes: list[str] | None = None,
        allowed_tools: list[str] | None = None,
        expires_at: datetime | None = None,
        name: str | None = None,
    ) -> str:
        async with self.sessions.begin() as session:
            created = await store.create_api_key(
                session,
                organization=organization,
                name=name or f"key-{secrets.token_hex(4)}",
                scopes=scopes or ["runtime"],
                allowed_tools=allowed_tools,
                expires_at=expires_at,
                hasher=self.hasher,
                created_by="test",
            )
        return created.secret

    async def user(self, organization: Organization, *, role: str = "member", password: str | None = None) -> User:
        async with self.sessions.begin() as session:
            return await store.create_user(
                session,
                organization=organization,
                email=f"user-{secrets.token_hex(4)}@example.com",
                password=password or DEFAULT_PASSWORD,
                role=role,
                hasher=self.hasher,
            )

    async def revoke(self, key: str) -> None:
        async with self.sessions.begin() as session:
            await store.revoke_api_key(session, key_id=key_id_of(key), actor="test")
        self.verifier.forget(key_id_of(key))  # what the server does after its own revocations


def key_id_of(key: str) -> str:
    return key[8:20]


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, start: float | None = None) -> None:
        import time

        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def running_app(settings: Settings, **kwargs: Any) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """A started app (lifespan running) and a client for it; stopping it flushes like a real shutdown."""
    application = create_app(settings, **kwargs)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as http:
            yield application, http


def factory_for(application: Starlette) -> KeyFactory:
    state = application.state.capgate
    return KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)


def basic(email: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{email}:{password}".encode()).decode()}
