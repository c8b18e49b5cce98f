"""Per-key rate limits through the real app, on both backends (in-process and the Redis server on this machine)."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from sqlalchemy import update

from auth.models import ApiKey, Organization
from auth.ratelimit import SECONDS_PER_DAY
from server.settings import Settings
from tests.conftest import migrate
from tests.helpers import FakeClock, factory_for, key_id_of, make_settings, running_app

REDIS_URL = "redis://127.0.0.1:6379/0"
CAPABILITIES = "/capabilities"


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    """Settings overrides selecting the backend; the Redis one gets a key prefix of its own."""
    if request.param == "memory":
        yield {}
        return
    prefix = f"capgate-test-{secrets.token_hex(6)}"
    # Generous timeout: a loaded test machine must not switch to the outage fallback (tested elsewhere).
    yield {"redis_url": REDIS_URL, "redis_key_prefix": prefix, "redis_timeout_seconds": 2.0}

    async def cleanup() -> None:
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(cleanup())


@pytest.fixture
async def limited_settings(tmp_path: Path, sqlite_url: str, backend: dict[str, Any]) -> Settings:
    await migrate(sqlite_url)
    return make_settings(tmp_path, sqlite_url, **backend)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def started(limited_settings: Settings, clock: FakeClock) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    async with running_app(limited_settings, clock=clock) as (application, http):
        yield application, http


async def test_250_requests_in_one_second_admit_100(started: tuple[Any, httpx.AsyncClient], clock: FakeClock) -> None:
    application, http = started
    keys = factory_for(application)
    key = await keys.key(await keys.organization())
    statuses = []
    for _ in range(250):  # evenly spread over 0.996 s
        response = await http.get(CAPABILITIES, headers={"x-api-key": key})
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json() == {"error": "Rate limit exceeded", "code": "rate_limited"}
            assert int(response.headers["retry-after"]) >= 1
            assert response.headers["x-ratelimit-remaining"] == "0"
        clock.advance(0.004)
    assert 98 <= statuses.count(200) <= 102
    assert statuses.count(429) == 250 - statuses.count(200)
    assert statuses[:100] == [200] * 100


async def test_concurrent_burst_admits_exactly_the_limit(started: tuple[Any, httpx.AsyncClient]) -> None:
    application, http = started
    keys = factory_for(application)
    key = await keys.key(await keys.organization())
    await http.get("/api/runtime/capabilities", headers={"x-api-key": key})  # warm the key cache
    responses = await asyncio.gather(*(http.get(CAPABILITIES, headers={"x-api-key": key}) for _ in range(250)))
    assert sum(r.status_code == 200 for r in responses) == 99
    assert all(r.status_code in (200, 429) for r in responses)


async def test_the_window_slides_instead_of_resetting(started: tuple[Any, httpx.AsyncClient], clock: FakeClock) -> None:
    application, http = started
    keys = factory_for(application)
    key = await keys.key(await keys.organization())
    clock.advance(0.9)
    for _ in range(100):
        assert (await http.get(CAPABILITIES, headers={"x-api-key": key})).status_code == 200
    clock.advance(0.2)  # a fixed window would have reset here and admitted another 100
    response = await http.get(CAPABILITIES, headers={"x-api-key": key})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "1"
    clock.advance(0.8)
    assert (await http.get(CAPABILITIES, headers={"x-api-key": key})).status_code == 200


async def test_headers_count_down(started: tuple[Any, httpx.AsyncClient]) -> None:
    application, http = started
    keys = factory_for(application)
    key = await keys.key(await keys.organization())
    for expected_remaining in (99, 98, 97):
        response = await http.get(CAPABILITIES, headers={"x-api-key": key})
        assert response.headers["x-ratelimit-limit"] == "100"
        assert response.headers["x-ratelimit-remaining"] == str(expected_remaining)
        assert response.headers["ratelimit-policy"] == '"per-second";q=100;w=1, "daily";q=5000;w=86400'
        daily_remaining = 5000 - (100 - expected_remaining)
        assert response.headers["ratelimit"].startswith(
            f'"per-second";r={expected_remaining};t=0, "daily";r={daily_remaining};t='
        )  # t=0 while there is room (issue 18 item 20: it said 1)
        assert "retry-after" not in response.headers


async def test_the_tighter_window_is_reported(tmp_path: Path, sqlite_url: str, backend: dict[str, Any]) -> None:
    await migrate(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url, daily_quota=3, **backend)
    async with running_app(settings, clock=FakeClock()) as (application, http):
        keys = factory_for(application)
        key = await keys.key(await keys.organization())
        response = await http.get(CAPABILITIES, headers={"x-api-key": key})
        assert (response.headers["x-ratelimit-limit"], response.headers["x-ratelimit-remaining"]) == ("3", "2")


async def test_key_routes_count_and_audit_routes_do_not(started: tuple[Any, httpx.AsyncClient]) -> None:
    """Key routes count in the key's limits (issue 14 item 7: 459 keys were made in 10 s)."""
    application, http = started
    keys = factory_for(application)
    key = await keys.key(await keys.organization(), scopes=["runtime", "keys:manage"])
    for path in ("/api/audit", "/healthz"):
        response = await http.get(path, headers={"x-api-key": key})
        assert response.status_code == 200
        assert "x-ratelimit-remaining" not in response.headers
    response = await http.get("/api/keys", headers={"x-api-key": key})
    assert response.headers["x-ratelimit-remaining"] == "99"
    response = await http.get(CAPABILITIES, headers={"x-api-key": key})
    assert response.headers["x-ratelimit-remaining"] == "98"


async def test_mcp_paths_count_and_answer_429_as_jsonrpc(
    started: tuple[Any, httpx.AsyncClient], clock: FakeClock
) -> None:
    application, http = started
    keys = factory_for(application)
    organization = await keys.organization()
    key = await keys.key(organization)
    async with application.state.capgate.sessions.begin() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id_of(key)).values(rate_limit_per_second=2))
    first = await http.post("/mcp", headers={"x-api-key": key}, json={})
    assert first.headers["x-ratelimit-remaining"] == "1"
    await http.post("/api/mcp", headers={"x-api-key": key}, json={})
    refused = await http.post("/mcp", headers={"x-api-key": key}, json={})
    assert refused.status_code == 429
    assert refused.json() == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32001, "message": "Rate limit exceeded", "data": {"code": "rate_limited"}},
    }
    assert refused.headers["retry-after"] == "1"


async def test_key_and_organization_overrides(started: tuple[Any, httpx.AsyncClient]) -> None:
    application, http = started
    keys = factory_for(application)
    organization = await keys.organization()
    plain, special = await keys.key(organization), await keys.key(organization)
    async with application.state.capgate.sessions.begin() as session:
        await session.execute(
            update(Organization)
            .where(Organization.id == organization.id)
            .values(rate_limit_per_second=7, daily_quota=70)
        )
        await session.execute(update(ApiKey).where(ApiKey.id == key_id_of(special)).values(rate_limit_per_second=3))
    response = await http.get(CAPABILITIES, headers={"x-api-key": plain})
    assert response.headers["ratelimit-policy"] == '"per-second";q=7;w=1, "daily";q=70;w=86400'
    response = await http.get(CAPABILITIES, headers={"x-api-key": special})
    assert response.headers["ratelimit-policy"] == '"per-second";q=3;w=1, "daily";q=70;w=86400'


async def test_daily_quota_holds_until_the_next_utc_day_also_after_a_restart(
    tmp_path: Path, sqlite_url: str, backend: dict[str, Any]
) -> None:
    await migrate(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url, daily_quota=5, **backend)
    clock = FakeClock(start=20_000 * SECONDS_PER_DAY + 3_600)  # 01:00 UTC
    async with running_app(settings, clock=clock) as (application, http):
        keys = factory_for(application)
        key = await keys.key(await keys.organization())
        for _ in range(5):
            assert (await http.get(CAPABILITIES, headers={"x-api-key": key})).status_code == 200
            clock.advance(1)
        refused = await http.get(CAPABILITIES, headers={"x-api-key": key})
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == str(SECONDS_PER_DAY - 3_600 - 5)
    async with running_app(settings, clock=clock) as (_application, http):
        clock.advance(3_600)
        assert (await http.get(CAPABILITIES, headers={"x-api-key": key})).status_code == 429
        clock.now = 20_001 * SECONDS_PER_DAY + 1
        response = await http.get(CAPABILITIES, headers={"x-api-key": key})
        assert response.status_code == 200
        assert response.headers["ratelimit"].endswith(f'"daily";r=4;t={SECONDS_PER_DAY - 1}')


async def test_refused_requests_do_not_use_up_the_daily_quota(
    tmp_path: Path, sqlite_url: str, backend: dict[str, Any]
) -> None:
    await migrate(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url, rate_limit_per_second=1, **backend)
    clock = FakeClock()
    async with running_app(settings, clock=clock) as (application, http):
        keys = factory_for(application)
        key = await keys.key(await keys.organization())
        for _ in range(10):
            await http.get(CAPABILITIES, headers={"x-api-key": key})
        clock.advance(1)
        response = await http.get(CAPABILITIES, headers={"x-api-key": key})
        assert response.headers["ratelimit"].startswith('"per-second";r=0;t=1, "daily";r=4998;')


async def test_rate_limiting_can_be_switched_off(tmp_path: Path, sqlite_url: str) -> None:
    await migrate(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url, rate_limit_enabled=False)
    async with running_app(settings) as (application, http):
        keys = factory_for(application)
        key = await keys.key(await keys.organization())
        response = await http.get(CAPABILITIES, headers={"x-api-key": key})
        assert response.status_code == 200
        assert "x-ratelimit-limit" not in response.headers
