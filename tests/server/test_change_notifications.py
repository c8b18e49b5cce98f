"""Change notifications (PostgreSQL LISTEN/NOTIFY): a change committed anywhere reaches every replica at once.

Two apps share one PostgreSQL database as two replicas would; their change-feed poll is set to a
minute, so only a notification can bring a change over within the tests' waits.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager

from auth import store
from auth.changes import Change
from server.app import create_app
from server.notifications import ChangeNotifications, asyncpg_dsn
from server.state import AppState
from tests.conftest import migrate
from tests.deadlines import EVENTUALLY
from tests.helpers import KeyFactory, key_id_of, make_settings
from tools.switches import store_tool_enabled

pytestmark = pytest.mark.postgres
SLOW_POLL = {"key_change_poll_seconds": 60.0, "tool_settings_cache_seconds": 3600.0}
Replica = tuple[AppState, httpx.AsyncClient]


async def eventually(condition: Callable[[], Awaitable[bool]]) -> None:
    with anyio.fail_after(EVENTUALLY):
        while not await condition():
            await anyio.sleep(0.01)


@asynccontextmanager
async def replica(tmp_path: Path, url: str, pepper: str) -> AsyncIterator[Replica]:
    app = create_app(make_settings(tmp_path / secrets.token_hex(4), url, pepper=pepper, **SLOW_POLL))
    async with LifespanManager(app):
        state: AppState = app.state.capgate
        notifications = state.notifications
        assert notifications is not None

        async def listening() -> bool:
            return notifications.listening

        await eventually(listening)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as http:
            yield state, http


@pytest.fixture
async def two_replicas(tmp_path: Path, postgres_url: str) -> AsyncIterator[tuple[Replica, Replica]]:
    await migrate(postgres_url)
    pepper = "test-pepper-" + secrets.token_hex(8)
    async with replica(tmp_path, postgres_url, pepper) as first, replica(tmp_path, postgres_url, pepper) as second:
        yield first, second


def status_is(http: httpx.AsyncClient, key: str, status: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return (await http.get("/capabilities", headers={"x-api-key": key})).status_code == status

    return check


async def test_a_key_revoked_through_one_replica_is_refused_by_the_other_at_once(
    two_replicas: tuple[Replica, Replica],
) -> None:
    (first, first_http), (_, second_http) = two_replicas
    keys = KeyFactory(sessions=first.sessions, hasher=first.hasher, verifier=first.verifier)
    org = await keys.organization()
    manager, agent = await keys.key(org, scopes=["keys:manage"]), await keys.key(org)
    assert await status_is(second_http, agent, 200)()  # verified and cached on the second replica
    revoked = await first_http.delete(f"/api/keys/{key_id_of(agent)}", headers={"x-api-key": manager})
    assert revoked.status_code == 200, revoked.text
    await eventually(status_is(second_http, agent, 401))


async def test_a_key_revoked_by_the_cli_and_a_tool_disabled_reach_a_running_replica_at_once(
    two_replicas: tuple[Replica, Replica],
) -> None:
    (first, _), (_, second_http) = two_replicas
    keys = KeyFactory(sessions=first.sessions, hasher=first.hasher, verifier=first.verifier)
    org = await keys.organization()
    agent, other = await keys.key(org), await keys.key(org)

    async def lists_echo() -> bool:
        response = await second_http.get("/capabilities", headers={"x-api-key": other})
        return "example_echo" in {tool["name"] for tool in response.json()["capabilities"]}

    assert await status_is(second_http, agent, 200)() and await lists_echo()
    async with first.sessions.begin() as session:  # what `capgate keys revoke` and `capgate tools disable` run
        await store.revoke_api_key(session, key_id=key_id_of(agent), actor="cli")
        await store_tool_enabled(session, organization_id=org.id, tool_name="example_echo", enabled=False)
    await eventually(status_is(second_http, agent, 401))

    async def echo_gone() -> bool:
        return not await lists_echo()

    await eventually(echo_gone)


async def test_after_losing_its_connection_the_listener_reconnects_and_rereads_everything(
    postgres_url: str,
) -> None:
    await migrate(postgres_url)
    notifications = ChangeNotifications(postgres_url, reconnect_seconds=0.05)
    calls: list[Change | None] = []
    notifications.on("key", calls.append)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(notifications.run)

        async def rereads(count: int) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                return calls.count(None) >= count and notifications.listening

            return check

        await eventually(await rereads(1))
        admin = await asyncpg.connect(asyncpg_dsn(postgres_url))
        try:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%' "
                "AND datname = current_database() AND pid <> pg_backend_pid()"
            )
            await eventually(await rereads(2))  # reconnected: the feeds re-read what the gap may have hidden
            await admin.execute('SELECT pg_notify(\'capgate_changes\', \'{"kind": "key", "id": "k1", "at": 1}\')')

            async def delivered() -> bool:
                return any(change is not None and change.id == "k1" for change in calls)

            await eventually(delivered)
        finally:
            await admin.close()
        tasks.cancel_scope.cancel()
