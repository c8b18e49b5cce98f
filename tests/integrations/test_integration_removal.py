"""Removing or disabling accounts from another process (the CLI) leaves nothing running in the server."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import httpx

from server.integrations import accounts, store
from server.state import AppState
from tests.helpers import KeyFactory
from tests.integrations.helpers import connect
from tests.integrations.upstreams import TOKENS
from tests.runtime_helpers import invoke


def running(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


async def wait_until_stopped(pid: int) -> None:
    with anyio.fail_after(15):
        while running(pid):
            await anyio.sleep(0.05)


async def test_a_disabled_or_removed_account_stops_its_upstream_process_at_once(
    client: httpx.AsyncClient, state: AppState, keys: KeyFactory, stdio_command: list[str]
) -> None:
    org = await keys.organization()
    ids = await connect(state, org.id, "local", {"one": TOKENS["a1"], "two": TOKENS["a2"]}, command=stdio_command)
    key = await keys.key(org)
    pids = {}
    for label, account_id in ids.items():
        answer = (await invoke(client, key, "local_pid", connectedAccountId=account_id)).json()
        pids[label] = int(answer["result"]["result"])
        assert running(pids[label]) and pids[label] != os.getpid()

    # What `capgate accounts disable` and `capgate integrations remove` do, in the CLI's own transaction:
    # nothing in this server is told, and the upstream idle timeout (300 s) is far away.
    async with state.sessions.begin() as session:
        await accounts.update_account(
            session, organization_id=org.id, account_id=ids["one"], actor="cli", status="disabled"
        )
    await wait_until_stopped(pids["one"])
    assert running(pids["two"])

    async with state.sessions.begin() as session:
        await store.delete_integration(session, organization_id=org.id, integration_id="local", actor="cli")
    await wait_until_stopped(pids["two"])
    names = {t["name"] for t in (await client.get("/capabilities", headers={"x-api-key": key})).json()["capabilities"]}
    assert not {name for name in names if name.startswith("local_")}
