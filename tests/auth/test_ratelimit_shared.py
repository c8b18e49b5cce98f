"""Two app instances sharing one Redis admit no more than the limit together."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio

from server.settings import Settings
from tests.conftest import migrate
from tests.helpers import FakeClock, factory_for, make_settings, running_app

REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def shared_settings(tmp_path: Path, sqlite_url: str) -> Iterator[Settings]:
    prefix = f"capgate-test-{secrets.token_hex(6)}"
    asyncio.run(migrate(sqlite_url))
    # A generous Redis timeout: on a loaded test machine 300 concurrent calls may take longer than the default
    # 50 ms, which would (correctly) switch each instance to its in-process fallback and break the sharing tested here.
    yield make_settings(tmp_path, sqlite_url, redis_url=REDIS_URL, redis_key_prefix=prefix, redis_timeout_seconds=2.0)

    async def cleanup() -> None:
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(cleanup())


async def test_two_instances_together_admit_no_more_than_the_limit(shared_settings: Settings) -> None:
    clock = FakeClock()
    async with (
        running_app(shared_settings, clock=clock) as (first_app, first),
        running_app(shared_settings, clock=clock) as (_second_app, second),
    ):
        keys = factory_for(first_app)
        key = await keys.key(await keys.organization())
        headers = {"x-api-key": key}
        admitted = 0
        for _round in range(3):
            responses = await asyncio.gather(
                *(client.get("/capabilities", headers=headers) for client in [first, second] * 150)
            )
            admitted += sum(r.status_code == 200 for r in responses)
            clock.advance(1.0)
        assert admitted <= 3 * 101
        assert admitted >= 3 * 100


async def test_two_instances_share_the_daily_quota(tmp_path: Path, shared_settings: Settings) -> None:
    settings = shared_settings.model_copy(update={"daily_quota": 50})
    clock = FakeClock()
    async with (
        running_app(settings, clock=clock) as (first_app, first),
        running_app(settings, clock=clock) as (_second_app, second),
    ):
        keys = factory_for(first_app)
        key = await keys.key(await keys.organization())
        responses = await asyncio.gather(
            *(client.get("/capabilities", headers={"x-api-key": key}) for client in [first, second] * 40)
        )
        assert sum(r.status_code == 200 for r in responses) == 50
