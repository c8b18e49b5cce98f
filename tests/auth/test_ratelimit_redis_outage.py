"""Issue 14 item 5: a real Redis made unavailable (stopped, or accepting and never answering) behind a
local TCP proxy. Limits stay on at limit / replicas, the daily quota keeps counting and reconciles,
one warning per outage, /readyz reports Redis, and a silent Redis is cut off by the breaker."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import redis.asyncio
from starlette.applications import Starlette

from tests.conftest import migrate
from tests.helpers import FakeClock, factory_for, make_settings, running_app
from tests.redis_proxy import REDIS_HOST, REDIS_PORT, RedisProxy, redis_proxy


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    value = f"capgate-test-{secrets.token_hex(6)}"
    yield value
    client = redis.asyncio.Redis(host=REDIS_HOST, port=REDIS_PORT)
    try:
        keys = [key async for key in client.scan_iter(match=f"{value}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@asynccontextmanager
async def outage_app(
    tmp_path: Path, sqlite_url: str, prefix: str, **overrides: Any
) -> AsyncIterator[tuple[RedisProxy, Starlette, httpx.AsyncClient, FakeClock]]:
    await migrate(sqlite_url)
    clock = FakeClock()
    async with redis_proxy() as proxy:
        settings = make_settings(
            tmp_path,
            sqlite_url,
            redis_url=proxy.url,
            redis_key_prefix=prefix,
            redis_timeout_seconds=0.2,  # generous for a loaded test machine; the attack's Redis never answers
            **overrides,
        )
        async with running_app(settings, clock=clock) as (application, http):
            yield proxy, application, http, clock


async def statuses(http: httpx.AsyncClient, key: str, count: int) -> list[int]:
    return [(await http.get("/capabilities", headers={"x-api-key": key})).status_code for _ in range(count)]


async def test_redis_down_keeps_limits_at_limit_per_replica_with_one_warning(
    tmp_path: Path, sqlite_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Attack: with Redis down, 300 of 300 requests were admitted and every one logged a warning."""
    async with outage_app(
        tmp_path, sqlite_url, prefix, rate_limit_per_second=10, replicas=2, redis_retry_seconds=60
    ) as (proxy, application, http, clock):
        keys = factory_for(application)
        key = await keys.key(await keys.organization())
        assert (await http.get("/readyz")).json()["redis"] == "ok"
        assert await statuses(http, key, 3) == [200] * 3
        await proxy.set("down")
        clock.advance(1.0)
        with caplog.at_level(logging.WARNING), anyio.fail_after(20):
            answered = await statuses(http, key, 30)
        assert answered.count(200) == 5  # ceil(10 / 2 replicas), not 30
        assert set(answered) == {200, 429}
        outage_warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
        assert len(outage_warnings) == 1
        ready = await http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {
            "status": "degraded",
            "database": "ok",
            "redis": "unreachable",
            "rateLimits": "fallback",
        }


async def test_silent_redis_is_cut_off_by_the_breaker(tmp_path: Path, sqlite_url: str, prefix: str) -> None:
    """Attack: a Redis that accepts connections but never answers added ~5 s to every request."""
    async with outage_app(tmp_path, sqlite_url, prefix, redis_retry_seconds=60) as (proxy, application, http, clock):
        keys = factory_for(application)
        key = await keys.key(await keys.organization())
        assert await statuses(http, key, 2) == [200, 200]
        await proxy.set("silent")
        with anyio.fail_after(10):  # before the fix: ~5 s per request, 15 s once the pool queued
            assert await statuses(http, key, 3) == [200] * 3  # each waits for the timeout, then falls back
            asked = proxy.bytes_to_redis
            assert await statuses(http, key, 40) == [200] * 40
        assert proxy.bytes_to_redis == asked  # the open breaker no longer asks Redis at all


async def test_daily_quota_keeps_counting_through_an_outage_and_reconciles(
    tmp_path: Path, sqlite_url: str, prefix: str
) -> None:
    """Attack: a key at 50/50 for the day got 200s while Redis was down."""
    async with outage_app(
        tmp_path, sqlite_url, prefix, daily_quota=50, rate_limit_per_second=1000, redis_retry_seconds=0.05
    ) as (proxy, application, http, clock):
        keys = factory_for(application)
        key = await keys.key(await keys.organization())
        assert await statuses(http, key, 45) == [200] * 45
        await proxy.set("down")
        with anyio.fail_after(20):
            answered = await statuses(http, key, 10)
        assert answered == [200] * 5 + [429] * 5  # the 5 left of today's quota, no more
        await proxy.set("forward")
        with anyio.fail_after(10):
            while (await http.get("/readyz")).json().get("redis") != "ok":
                await anyio.sleep(0.05)
        assert await statuses(http, key, 1) == [429]
        client = redis.asyncio.Redis(host=REDIS_HOST, port=REDIS_PORT)
        try:
            counters = [k async for k in client.scan_iter(match=f"{prefix}:rl:*:d:*")]
            assert [int(await client.get(name) or 0) for name in counters] == [50]
        finally:
            await client.aclose()


@pytest.mark.parametrize(("mode", "expected"), [("closed", 503), ("open", 200)])
async def test_outage_mode_closed_refuses_and_open_admits(
    tmp_path: Path, sqlite_url: str, prefix: str, mode: str, expected: int
) -> None:
    async with outage_app(
        tmp_path, sqlite_url, prefix, rate_limit_per_second=2, redis_outage=mode, redis_retry_seconds=60
    ) as (proxy, application, http, clock):
        keys = factory_for(application)
        key = await keys.key(await keys.organization())
        await proxy.set("down")
        with anyio.fail_after(20):
            answered = await statuses(http, key, 10)
        assert answered == [expected] * 10
        if mode == "closed":
            response = await http.get("/capabilities", headers={"x-api-key": key})
            assert response.json()["code"] == "rate_limiter_unavailable"
            assert (await http.get("/readyz")).status_code == 503
