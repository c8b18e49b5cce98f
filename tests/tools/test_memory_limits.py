from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings
from tests.tools.test_memory_tools import call, result


@pytest.fixture
async def small_client(tmp_path: Path, sqlite_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, KeyFactory]]:
    settings = make_settings(tmp_path, sqlite_url, memory_max_document_bytes=100, memory_quota_bytes=250)
    await migrate(sqlite_url)
    app = create_app(settings)
    async with LifespanManager(app):
        state = app.state.capgate
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as http:
            yield http, KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)


async def test_document_size_is_bounded(small_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = small_client
    key = await keys.key(await keys.organization())
    body = (await call(client, key, "memory_write", path="/big.md", content="x" * 101)).json()
    assert body["isError"] and "100 bytes" in body["error"]
    await result(client, key, "memory_write", path="/a.md", content="x" * 60)
    body = (await call(client, key, "memory_append", path="/a.md", content="y" * 41)).json()
    assert body["isError"] and "100 bytes" in body["error"]
    assert (await result(client, key, "memory_read", path="/a.md"))["content"] == "x" * 60


async def test_organization_quota_is_bounded(small_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = small_client
    key = await keys.key(await keys.organization())
    for name in ("a", "b"):
        await result(client, key, "memory_write", path=f"/{name}.md", content="x" * 100)
    body = (await call(client, key, "memory_write", path="/c.md", content="x" * 60)).json()
    assert body["isError"] and "quota" in body["error"]
    assert [e["name"] for e in (await result(client, key, "memory_ls", path="/"))["entries"]] == ["a.md", "b.md"]
    other = await keys.key(await keys.organization())
    await result(client, other, "memory_write", path="/c.md", content="x" * 60)
