from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings

MemoryApp = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, KeyFactory]]]


@asynccontextmanager
async def memory_app(data_dir: Path, url: str, **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, KeyFactory]]:
    """A client of a fresh app on ``url`` (SQLite or PostgreSQL) and a key factory for it."""
    await migrate(url)
    app = create_app(make_settings(data_dir, url, **overrides))
    async with LifespanManager(app):
        state = app.state.capgate
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
            yield http, KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)


@pytest.fixture
async def db_client(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, KeyFactory]]:
    """A client of an app on SQLite and, in a second run, on PostgreSQL."""
    async with memory_app(tmp_path, database_url) as pair:
        yield pair
