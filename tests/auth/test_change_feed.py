"""The change feeds against skewed writer clocks (issue 18 item 2), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth import store
from auth.dbtypes import utcnow
from auth.hashing import Argon2Parameters, SecretHasher
from auth.models import ApiKey, Organization
from auth.records import KeyRecord
from auth.watcher import key_change_feed
from server.db import create_engine, session_factory
from server.migrate import upgrade_database
from tools import switches as switches_module
from tools.models import ToolSetting
from tools.switches import ToolSwitches, store_tool_enabled, tool_setting_feed

HASHER = SecretHasher(Argon2Parameters(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(database_url)
    await upgrade_database(engine)
    try:
        yield session_factory(engine)
    finally:
        await engine.dispose()


async def org_with_keys(sessions: async_sessionmaker[AsyncSession], count: int) -> tuple[Organization, list[str]]:
    async with sessions.begin() as session:
        org = await store.create_organization(session, name=f"org-{secrets.token_hex(4)}")
        ids = []
        for index in range(count):
            created = await store.create_api_key(
                session, organization=org, name=f"k{index}", scopes=["runtime"], hasher=HASHER, created_by="t"
            )
            ids.append(created.record.id)
    return org, ids


class Seen:
    def __init__(self) -> None:
        self.records: list[KeyRecord] = []

    async def __call__(self, record: KeyRecord, _previous: KeyRecord | None) -> None:
        self.records.append(record)

    def terminated(self, key_id: str) -> bool:
        return any(r.key_id == key_id and r.streams_terminated_at is not None for r in self.records)


async def test_one_row_stamped_in_the_future_does_not_hide_later_kill_switches(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    _, (skewed, victim) = await org_with_keys(sessions, 2)
    seen = Seen()
    feed = key_change_feed(sessions, [seen])
    await feed.poll_once()
    async with sessions.begin() as session:  # a writer whose clock runs 60 s ahead
        await session.execute(
            update(ApiKey).where(ApiKey.id == skewed).values(updated_at=utcnow() + timedelta(seconds=60))
        )
    await feed.poll_once()
    async with sessions.begin() as session:
        await store.revoke_api_key(session, key_id=victim, actor="other process", terminate_streams=True)
    await feed.poll_once()
    assert seen.terminated(victim), "revoke-and-terminate of another key never reached the feed's listeners"


async def test_a_writer_whose_clock_lags_still_reaches_the_feed(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, (victim,) = await org_with_keys(sessions, 1)
    seen = Seen()
    feed = key_change_feed(sessions, [seen])
    await feed.poll_once()
    monkeypatch.setattr(store, "utcnow", lambda: utcnow() - timedelta(seconds=60))  # the CLI host is 60 s behind
    async with sessions.begin() as session:
        await store.revoke_api_key(session, key_id=victim, actor="cli", terminate_streams=True)
    await feed.poll_once()
    assert seen.terminated(victim)


async def test_one_tool_switch_stamped_in_the_future_does_not_hide_later_switches(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    org, _ = await org_with_keys(sessions, 0)
    seen: list[tuple[str, bool]] = []

    async def listener(setting: ToolSetting, _previous: ToolSetting | None) -> None:
        seen.append((setting.tool_name, setting.enabled))

    feed = tool_setting_feed(sessions, [listener], interval=0.25)
    await feed.poll_once()
    async with sessions.begin() as session:
        await store_tool_enabled(session, organization_id=org.id, tool_name="skewed", enabled=False)
        await session.execute(
            update(ToolSetting)
            .where(ToolSetting.tool_name == "skewed")  # type: ignore[arg-type]
            .values(updated_at=utcnow() + timedelta(seconds=60))
        )
    await feed.poll_once()
    async with sessions.begin() as session:
        await store_tool_enabled(session, organization_id=org.id, tool_name="memory_read", enabled=False)
    await feed.poll_once()
    assert ("memory_read", False) in seen


async def test_a_tool_switch_lookup_in_flight_does_not_write_the_old_disabled_set_back(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18 item 19: the lookup read the set before the switch committed and returns after it."""
    org, _ = await org_with_keys(sessions, 0)
    switches = ToolSwitches(sessions, ttl=60.0)
    read, release = asyncio.Event(), asyncio.Event()
    real_lookup = switches_module.disabled_tools

    async def gated_lookup(session: AsyncSession, *, organization_id: str) -> frozenset[str]:
        names = await real_lookup(session, organization_id=organization_id)
        read.set()
        await release.wait()
        return names

    monkeypatch.setattr(switches_module, "disabled_tools", gated_lookup)
    in_flight = asyncio.create_task(switches.disabled(org.id))
    await read.wait()
    monkeypatch.setattr(switches_module, "disabled_tools", real_lookup)
    await switches.set_enabled(org.id, "memory_read", False)
    release.set()
    assert await in_flight == frozenset()  # began before the switch
    assert await switches.disabled(org.id) == frozenset({"memory_read"})


async def test_an_organization_wide_stamp_is_loaded_once_not_on_every_poll(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Goal 4 of issue 12: every poll re-reads the lookback window; it must not reload every stamped key each time."""
    org, ids = await org_with_keys(sessions, 30)
    seen = Seen()
    feed = key_change_feed(sessions, [seen])
    await feed.poll_once()
    async with sessions.begin() as session:  # what an organization-wide tool switch does to its keys
        await store.bump_policy_revisions(session, organization_id=org.id, now=utcnow())
    full_rows_loaded = 0

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        nonlocal full_rows_loaded
        if statement.lstrip().startswith("SELECT api_keys.id, api_keys.organization_id"):
            full_rows_loaded += 1

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        assert await feed.poll_once() == 30
        for _ in range(5):  # later polls inside the lookback window see the same stamps
            assert await feed.poll_once() == 0
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert full_rows_loaded == 1, f"full key rows were loaded {full_rows_loaded} times"
    assert {record.key_id for record in seen.records[-30:]} == set(ids)
