from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from tests.conftest import migrate
from tests.helpers import FakeClock, KeyFactory, factory_for, make_settings, running_app


@pytest.fixture
async def db_client(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, KeyFactory]]:
    """A client of an app on SQLite and, in a second run, on PostgreSQL."""
    await migrate(database_url)
    app = create_app(make_settings(tmp_path, database_url))
    async with LifespanManager(app):
        state = app.state.capgate
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
            yield http, KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)


@pytest.fixture
async def clocked_client(
    tmp_path: Path, database_url: str
) -> AsyncIterator[tuple[httpx.AsyncClient, KeyFactory, FakeClock]]:
    """Like db_client, with the server's clock in the test's hands."""
    await migrate(database_url)
    clock = FakeClock()
    async with running_app(make_settings(tmp_path, database_url), clock=clock) as (app, http):
        yield http, factory_for(app), clock
