from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from server.app import create_app
from tests.conftest import migrate
from tests.helpers import KeyFactory, make_settings


@pytest.fixture
async def db_client(tmp_path: Path, database_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, KeyFactory]]:
    """A client of an app on SQLite and, in a second run, on PostgreSQL."""
    await migrate(database_url)
    app = create_app(make_settings(tmp_path, database_url))
    async with LifespanManager(app):
        state = app.state.capgate
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://capgate.test") as http:
            yield http, KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)
