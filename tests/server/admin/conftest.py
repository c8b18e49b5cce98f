from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager

from auth.models import Organization, User
from server.app import create_app
from tests.conftest import migrate
from tests.helpers import DEFAULT_PASSWORD, FakeClock, KeyFactory, make_settings

BASE_URL = "http://capgate.test"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


@dataclass
class Console:
    """A browser-like client of the console: keeps cookies, reads CSRF tokens from the pages it gets."""

    http: httpx.AsyncClient
    csrf: str = ""

    async def sign_in(self, email: str, password: str = DEFAULT_PASSWORD) -> httpx.Response:
        page = await self.http.get("/admin/sign-in")
        response = await self.http.post(
            "/admin/sign-in", data={"csrf": csrf_of(page.text), "email": email, "password": password}
        )
        if response.status_code == 303:
            self.csrf = csrf_of((await self.http.get("/admin/keys")).text)
        return response

    async def post(self, path: str, data: dict[str, str | list[str]], *, csrf: bool = True) -> httpx.Response:
        form = {**data, "csrf": self.csrf} if csrf else data
        return await self.http.post(path, data=form)


@dataclass
class ConsoleWorld:
    keys: KeyFactory
    clock: FakeClock
    app_http: httpx.AsyncClient
    transport: httpx.ASGITransport
    opened: list[httpx.AsyncClient]

    def console(self) -> Console:
        http = httpx.AsyncClient(transport=self.transport, base_url=BASE_URL)
        self.opened.append(http)
        return Console(http)

    async def signed_in(self, user: User) -> Console:
        console = self.console()
        response = await console.sign_in(user.email)
        assert response.status_code == 303, response.text
        return console

    async def organization_with(self, *roles: str) -> tuple[Organization, list[User]]:
        organization = await self.keys.organization()
        return organization, [await self.keys.user(organization, role=role) for role in roles]


@pytest.fixture
async def world(tmp_path: Path, database_url: str) -> AsyncIterator[ConsoleWorld]:
    """The app on SQLite and, in a second run, on PostgreSQL, with a clock the test moves."""
    await migrate(database_url)
    clock = FakeClock()
    app = create_app(
        make_settings(tmp_path, database_url, login_failure_limit=3, login_source_failure_limit=5), clock=clock
    )
    async with LifespanManager(app):
        state = app.state.capgate
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            keys = KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)
            world = ConsoleWorld(keys=keys, clock=clock, app_http=http, transport=transport, opened=[])
            try:
                yield world
            finally:
                for client in world.opened:
                    await client.aclose()
