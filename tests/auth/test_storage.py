"""Storage through the real data functions, on SQLite and on PostgreSQL."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from datetime import UTC, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth import store
from auth.audit import list_audit_events
from auth.dbtypes import utcnow
from auth.errors import Conflict, InvalidRequest, NotFound, RevokedApiKey
from auth.hashing import Argon2Parameters, SecretHasher
from auth.keys import parse_key
from auth.models import ApiKey, Organization
from auth.records import KeyRecord
from auth.verifier import KeyVerifier
from auth.watcher import key_change_feed
from server.db import create_engine, session_factory
from server.migrate import upgrade_database

HASHER = SecretHasher(Argon2Parameters(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await upgrade_database(engine)
    await upgrade_database(engine)  # idempotent: a second upgrade is a no-op
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def new_org(sessions: async_sessionmaker[AsyncSession], name: str | None = None) -> Organization:
    async with sessions.begin() as session:
        return await store.create_organization(session, name=name or f"org-{secrets.token_hex(4)}")


async def test_organization_names_are_unique(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = await new_org(sessions)
    with pytest.raises(Conflict, match="already exists"):
        await new_org(sessions, org.name)
    async with sessions() as session:
        assert (await store.get_organization(session, ref=org.name)).id == org.id
        assert (await store.get_organization(session, ref=org.id)).name == org.name
        with pytest.raises(NotFound, match="Unknown organization: nope"):
            await store.get_organization(session, ref="nope")


async def test_key_is_stored_only_as_an_argon2id_hash(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = await new_org(sessions)
    async with sessions.begin() as session:
        created = await store.create_api_key(
            session, organization=org, name="ci", scopes=["runtime"], hasher=HASHER, created_by="test"
        )
    parsed = parse_key(created.secret)
    assert parsed is not None
    async with sessions() as session:
        row = await store.get_api_key(session, key_id=parsed.key_id)
    assert row.key_hash.startswith("$argon2id$")
    assert created.secret not in row.key_hash
    assert row.display_prefix == created.secret[:12]
    assert HASHER.verify(row.key_hash, created.secret)
    assert row.created_at.tzinfo is not None and row.created_at.utcoffset() == timedelta(0)
    assert row.scopes == ["runtime"]


async def test_key_validation_errors_name_the_problem(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = await new_org(sessions)
    async with sessions.begin() as session:
        await store.create_api_key(
            session, organization=org, name="ci", scopes=["runtime"], hasher=HASHER, created_by="t"
        )
    cases = [
        ({"name": "x", "scopes": ["admin"]}, InvalidRequest, "Unknown scope: 'admin'"),
        ({"name": "x", "scopes": []}, InvalidRequest, "at least one scope"),
        ({"name": "  ", "scopes": ["runtime"]}, InvalidRequest, "must not be empty"),
        ({"name": "ci", "scopes": ["runtime"]}, Conflict, "active key named 'ci' already exists"),
        ({"name": "x", "scopes": ["runtime"], "expires_at": utcnow() - timedelta(days=1)}, InvalidRequest, "future"),
        ({"name": "x", "scopes": ["runtime"], "allowed_tools": ["bad pattern"]}, InvalidRequest, "allowed tool"),
    ]
    for kwargs, error, message in cases:
        async with sessions.begin() as session:
            with pytest.raises(error, match=message):
                await store.create_api_key(session, organization=org, hasher=HASHER, created_by="t", **kwargs)
    async with sessions() as session:
        assert len(await store.list_api_keys(session, organization_id=org.id)) == 1


async def test_revocation_is_recorded_once_and_audited(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = await new_org(sessions)
    async with sessions.begin() as session:
        created = await store.create_api_key(
            session, organization=org, name="ci", scopes=["runtime"], hasher=HASHER, created_by="t"
        )
    key_id = created.record.id
    async with sessions.begin() as session:
        first = (await store.revoke_api_key(session, key_id=key_id, actor="cli")).revoked_at
    async with sessions.begin() as session:
        again = (await store.revoke_api_key(session, key_id=key_id, actor="cli")).revoked_at
    assert first == again and first is not None and first.tzinfo == UTC
    async with sessions() as session:
        events = await list_audit_events(session, organization_id=org.id)
        assert [e.action for e in events] == ["key.revoked", "key.created"]
        assert await store.list_api_keys(session, organization_id=org.id, include_revoked=False) == []


async def test_users_have_argon2_password_hashes_and_unique_emails(sessions: async_sessionmaker[AsyncSession]) -> None:
    org = await new_org(sessions)
    async with sessions.begin() as session:
        user = await store.create_user(
            session,
            organization=org,
            email="Ada@Example.com",
            password="correct horse battery",
            role="admin",
            hasher=HASHER,
        )
    assert user.email == "ada@example.com"
    assert user.password_hash.startswith("$argon2id$")
    async with sessions.begin() as session:
        with pytest.raises(Conflict):
            await store.create_user(
                session, organization=org, email="ada@example.com", password="x" * 12, role="member", hasher=HASHER
            )
    async with sessions.begin() as session:
        with pytest.raises(InvalidRequest, match="Unknown role"):
            await store.create_user(
                session, organization=org, email="b@example.com", password="x" * 12, role="root", hasher=HASHER
            )


async def test_watcher_brings_another_writers_revocation_into_the_cache(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org = await new_org(sessions)
    async with sessions.begin() as session:
        created = await store.create_api_key(
            session, organization=org, name="ci", scopes=["runtime"], hasher=HASHER, created_by="t"
        )

    async def load(key_id: str) -> KeyRecord | None:
        async with sessions() as session:
            row = await session.get(ApiKey, key_id)
            return KeyRecord.from_row(row) if row else None

    verifier = KeyVerifier(load_record=load, hasher=HASHER, pepper=b"p")

    async def refresh(record: KeyRecord, _previous: KeyRecord | None) -> None:
        verifier.refresh(record)

    watcher = key_change_feed(sessions, [refresh])
    assert (await verifier.verify(created.secret)).revoked_at is None
    async with sessions.begin() as session:
        await store.revoke_api_key(session, key_id=created.record.id, actor="other process")
    assert await watcher.poll_once() >= 1
    with pytest.raises(RevokedApiKey):
        await verifier.verify(created.secret)
