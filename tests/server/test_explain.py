"""`keys explain` agrees with what a call actually does: random keys × tools, through the real HTTP path."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from server.app import create_app
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, key_id_of, make_settings
from tests.runtime_helpers import headers, invoke

TOOLS = ["memory_ls", "memory_read", "memory_write", "memory_append", "memory_search", "example_echo", "no_such_tool"]
GLOBS = ["memory_*", "memory_read", "*_ls", "memory_w*", "example_*", "nothing*", "memory_[rs]*"]
SCOPES = ["runtime", "runtime:read", "keys:manage"]


@dataclass
class Served:
    portal: BlockingPortal
    client: httpx.AsyncClient
    state: AppState
    keys: KeyFactory


@asynccontextmanager
async def lifespan_of(app: Starlette) -> AsyncIterator[None]:
    async with LifespanManager(app):
        yield


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp_path: Path = tmp_path_factory.mktemp("explain")
    settings_ = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'c.db'}", rate_limit_enabled=False)
    with start_blocking_portal() as portal:
        portal.call(migrate, settings_.resolved_database_url)
        app = create_app(settings_)
        with portal.wrap_async_context_manager(lifespan_of(app)):
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test")
            state = app.state.capgate
            yield Served(portal, client, state, KeyFactory(state.sessions, state.hasher, state.verifier))
            portal.call(client.aclose)


async def call_and_explain(
    served: Served, key_spec: dict[str, Any], tool: str
) -> tuple[int, dict[str, Any], dict[str, Any]]:
    keys, state = served.keys, served.state
    org = await keys.organization()
    manager = await keys.key(org, scopes=["keys:manage", "runtime"])
    key = await keys.key(org, scopes=key_spec["scopes"], allowed_tools=key_spec["allowed_tools"])
    if key_spec["revoked"]:
        await keys.revoke(key)
    for name in key_spec["disabled"]:
        await state.runtime.switches.set_enabled(org.id, name, False)
    await state.watcher.poll_once()  # the switches bumped the key's policy revision; apply it as every replica does
    response = await invoke(served.client, key, tool, {"path": "/"})
    explained = await served.client.get(
        f"/api/keys/{key_id_of(key)}/explain", params={"tool": tool}, headers=headers(manager)
    )
    assert explained.status_code == 200, explained.text
    await state.decisions.flush(state.sessions, state.runtime.committer.submit)
    recorded = await served.client.get(
        "/api/audit/decisions", params={"keyId": key_id_of(key), "limit": 1}, headers=headers(manager)
    )
    return response.status_code, explained.json(), recorded.json()["decisions"][0]


keys_strategy = st.fixed_dictionaries(
    {
        "scopes": st.lists(st.sampled_from(SCOPES), min_size=1, max_size=3, unique=True),
        "allowed_tools": st.none() | st.lists(st.sampled_from(GLOBS), max_size=3, unique=True),
        "revoked": st.booleans(),
        "disabled": st.lists(st.sampled_from(TOOLS[:-1]), max_size=2, unique=True),
    }
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key_spec=keys_strategy, tool=st.sampled_from(TOOLS))
def test_keys_explain_agrees_with_the_call(served: Served, key_spec: dict[str, Any], tool: str) -> None:
    status, explained, recorded = served.portal.call(call_and_explain, served, key_spec, tool)
    # Allowed calls pass authorization whatever the tool then says (200, or 400 for this input).
    assert explained["allowed"] == (status in (200, 400)), (status, explained)
    assert not explained["allowed"] or status != 404
    assert (recorded["outcome"] == "allowed") == explained["allowed"]
    assert (recorded["reason"], recorded["rule"]) == (explained["reason"], explained["rule"])
    assert recorded["policyRevision"] == explained["policyRevision"]
