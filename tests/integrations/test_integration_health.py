"""An upstream that goes down: a clear tool error, the breaker opens, and it recovers when the upstream is back."""

from __future__ import annotations

from pathlib import Path

import anyio

from server.integrations.models import ConnectedAccount
from server.settings import Settings
from tests.conftest import migrate
from tests.helpers import FakeClock, factory_for, running_app
from tests.integrations.helpers import connect
from tests.integrations.upstreams import TOKENS, Upstream, start_http_upstream
from tests.runtime_helpers import invoke


async def test_upstream_down_gives_a_clear_error_opens_the_breaker_and_recovers(
    settings: Settings, tmp_path: Path
) -> None:
    await migrate(settings.resolved_database_url)
    upstream = start_http_upstream(tmp_path)
    port = int(upstream.url.split(":")[2].split("/")[0])
    clock = FakeClock()
    settings = settings.model_copy(
        update={"upstream_failure_threshold": 2, "upstream_backoff_seconds": 0, "upstream_cooldown_seconds": 30}
    )
    try:
        async with running_app(settings, clock=clock) as (app, client):
            keys = factory_for(app)
            state = app.state.capgate
            org = await keys.organization()
            ids = await connect(state, org.id, "crm", {"main": TOKENS["b"]}, url=upstream.url)
            key = await keys.key(org)
            assert (await invoke(client, key, "crm_whoami")).json()["isError"] is False

            upstream.stop()
            errors = [(await invoke(client, key, "crm_whoami")).json() for _ in range(2)]
            for body in errors:
                assert body["isError"] is True and body["status"] == "failed"
                assert body["error"].startswith(f"Upstream crm ({ids['main']}) failed:")
                assert TOKENS["b"] not in body["error"]
            async with state.sessions() as session:
                account = await session.get(ConnectedAccount, ids["main"])
                assert account is not None and account.status == "error" and account.last_error
            registry = state.metrics.registry
            assert registry.get_sample_value("capgate_integration_up", {"integration": ids["main"]}) == 0
            open_state = {"integration": ids["main"], "state": "open"}
            assert registry.get_sample_value("capgate_integration_breaker_state", open_state) == 1

            fast = await invoke(client, key, "crm_whoami")
            assert fast.status_code == 200
            assert "is unavailable" in fast.json()["error"] and "retrying in 30 s" in fast.json()["error"]

            upstream = start_http_upstream(tmp_path, port)
            clock.advance(31)
            recovered = await invoke(client, key, "crm_whoami")
            assert recovered.json()["isError"] is False, recovered.text
            async with state.sessions() as session:
                account = await session.get(ConnectedAccount, ids["main"])
                assert account is not None and account.status == "ok" and account.last_error is None
            assert registry.get_sample_value("capgate_integration_up", {"integration": ids["main"]}) == 1
            closed = {"integration": ids["main"], "state": "closed"}
            assert registry.get_sample_value("capgate_integration_breaker_state", closed) == 1
            assert registry.get_sample_value("capgate_integration_breaker_state", open_state) == 0
    finally:
        upstream.stop()


async def test_stdio_upstreams_are_bounded_and_the_idle_one_makes_room(
    settings: Settings, stdio_command: list[str]
) -> None:
    await migrate(settings.resolved_database_url)
    async with running_app(settings.model_copy(update={"max_stdio_upstreams": 1})) as (app, client):
        keys = factory_for(app)
        org = await keys.organization()
        ids = await connect(
            app.state.capgate, org.id, "local", {"one": TOKENS["a1"], "two": TOKENS["a2"]}, command=stdio_command
        )
        key = await keys.key(org)

        async def pid_of(account: str) -> int:
            body = (await invoke(client, key, "local_pid", connectedAccountId=ids[account])).json()
            assert body["isError"] is False, body
            return int(body["result"]["result"])

        first = await pid_of("one")
        assert await pid_of("one") == first  # reused while it is the only one
        await pid_of("two")  # only one may run: "one" (idle) is stopped to make room
        assert app.state.capgate.integrations.pool.running_stdio() == 1
        assert await pid_of("one") != first


async def test_a_changed_credential_reconnects_and_an_idle_connection_is_closed(
    settings: Settings, http_upstream: Upstream
) -> None:
    await migrate(settings.resolved_database_url)
    async with running_app(settings.model_copy(update={"upstream_idle_seconds": 0.2})) as (app, client):
        keys = factory_for(app)
        org = await keys.organization()
        ids = await connect(app.state.capgate, org.id, "crm", {"main": TOKENS["a1"]}, url=http_upstream.url)
        key, manager = await keys.key(org), await keys.key(org, scopes=["integrations:manage", "runtime"])
        pool = app.state.capgate.integrations.pool
        assert (await invoke(client, key, "crm_whoami")).json()["result"] == {"result": f"token={TOKENS['a1']}"}
        changed = await client.patch(
            f"/api/accounts/{ids['main']}", json={"credential": TOKENS["a2"]}, headers={"x-api-key": manager}
        )
        assert changed.status_code == 200
        assert (await invoke(client, key, "crm_whoami")).json()["result"] == {"result": f"token={TOKENS['a2']}"}
        with anyio.fail_after(10):
            while pool.open_sessions():
                await anyio.sleep(0.05)
