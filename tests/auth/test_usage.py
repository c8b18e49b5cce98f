"""Batched writes of last-used times and daily counts, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
from datetime import timedelta

from auth.dbtypes import utcnow
from auth.models import ApiKey
from auth.usage import read_daily_usage, write_daily_usage, write_last_used
from server.db import create_engine, session_factory
from tests.conftest import migrate
from tests.helpers import FAST_ARGON2, KeyFactory, key_id_of


async def test_counts_and_last_used_round_trip(database_url: str) -> None:
    from auth.hashing import Argon2Parameters, SecretHasher
    from auth.verifier import KeyVerifier

    await migrate(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    try:
        hasher = SecretHasher(Argon2Parameters(**{k.removeprefix("argon2_"): v for k, v in FAST_ARGON2.items()}))
        verifier = KeyVerifier(load_record=lambda _id: None, hasher=hasher, pepper=b"p")  # type: ignore[arg-type,return-value]
        keys = KeyFactory(sessions=sessions, hasher=hasher, verifier=verifier)
        key_id = key_id_of(await keys.key(await keys.organization()))
        async with sessions.begin() as session:
            await write_daily_usage(session, [(key_id, 20_000, 3), (key_id, 19_999, 9)])
        async with sessions.begin() as session:
            await write_daily_usage(session, [(key_id, 20_000, 7)])
        async with sessions() as session:  # rows are increments: 3 + 7 (issue 18 item 12)
            assert (key_id, 20_000, 10) in await read_daily_usage(session, today=20_000)

        seen = utcnow()
        async with sessions.begin() as session:
            await write_last_used(session, {key_id: seen})
        async with sessions.begin() as session:  # an older time from a slower replica never goes backwards
            await write_last_used(session, {key_id: seen - timedelta(minutes=5)})
        async with sessions() as session:
            row = await session.get(ApiKey, key_id)
            assert row is not None and abs((row.last_used_at - seen).total_seconds()) < 0.001
            assert row.updated_at < seen  # the key-change watcher does not see last-used writes
    finally:
        await engine.dispose()


async def test_two_processes_flushing_one_keys_day_add_up(database_url: str) -> None:
    """Issue 18 item 12: during a rolling restart two processes overwrote each other's daily counts."""
    from auth.ratelimit import Limits
    from auth.ratelimit_memory import InProcessBackend

    await migrate(database_url)
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    limits, now = Limits(per_second=100, daily=1_000), 20_000 * 86_400 + 60.0
    key_id = secrets.token_hex(6)  # the PostgreSQL database is shared by the whole run
    try:
        old, new = InProcessBackend(), InProcessBackend()  # the replica going away and its replacement
        for backend, requests in ((old, 3), (new, 4)):
            async with sessions() as session:
                backend.load_daily(await read_daily_usage(session, today=20_000))
            for index in range(requests):
                await backend.hit(key_id, limits, now + index * 0.01)
        for _ in range(2):  # flushing twice writes nothing twice
            for backend in (old, new):
                rows = backend.dirty_daily()
                async with sessions.begin() as session:
                    await write_daily_usage(session, rows)
                backend.mark_written(rows)
        await new.hit(key_id, limits, now + 1)
        rows = new.dirty_daily()
        async with sessions.begin() as session:
            await write_daily_usage(session, rows)
        async with sessions() as session:
            counts = [row for row in await read_daily_usage(session, today=20_000) if row[0] == key_id]
        assert counts == [(key_id, 20_000, 8)]
    finally:
        await engine.dispose()
