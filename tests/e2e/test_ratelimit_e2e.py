"""Rate limits across real server processes: a restart keeps the daily quota; replicas share it through Redis."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from auth import store
from auth.hashing import SecretHasher
from server.db import create_engine, session_factory
from server.migrate import upgrade_database
from server.settings import Settings

pytestmark = pytest.mark.e2e
CAPGATE = str(Path(sys.executable).parent / "capgate")
REDIS_URL = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")}
    env.update(
        CAPGATE_DATA_DIR=str(data_dir),
        CAPGATE_ARGON2_TIME_COST="1",
        CAPGATE_ARGON2_MEMORY_COST="1024",
        CAPGATE_LOG_LEVEL="WARNING",
        **{f"CAPGATE_{name.upper()}": value for name, value in settings.items()},
    )
    return env


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [CAPGATE, "serve", "--port", str(self.port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )

    def wait_ready(self) -> Server:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("capgate serve did not come up")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=15)
        assert self.process.stderr is not None
        self.process.stderr.close()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    prefix = f"capgate-test-{secrets.token_hex(6)}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def make_key(env: dict[str, str]) -> str:
    """Migrates the database and creates a key through the store, in this process (the CLI's imports are slow)."""
    settings = Settings(_env_file=None, **{k[8:].lower(): v for k, v in env.items() if k.startswith("CAPGATE_")})

    async def create() -> str:
        engine = create_engine(settings.resolved_database_url)
        try:
            await upgrade_database(engine)
            async with session_factory(engine).begin() as session:
                organization = await store.create_organization(session, name="acme")
                created = await store.create_api_key(
                    session,
                    organization=organization,
                    name="agent",
                    scopes=["runtime"],
                    hasher=SecretHasher(settings.argon2_parameters),
                    created_by="test",
                )
                return created.secret
        finally:
            await engine.dispose()

    return asyncio.run(create())


def test_daily_quota_survives_a_restart(tmp_path: Path) -> None:
    env = environment(tmp_path, daily_quota="5", usage_flush_seconds="50")
    key = make_key(env)
    server = Server(env).wait_ready()
    try:
        statuses = [httpx.get(f"{server.url}/capabilities", headers={"x-api-key": key}).status_code for _ in range(7)]
    finally:
        server.stop()  # a clean shutdown writes the day's counts
    assert statuses == [200] * 5 + [429] * 2
    server = Server(env).wait_ready()
    try:
        response = httpx.get(f"{server.url}/capabilities", headers={"x-api-key": key})
        assert response.status_code == 429
        assert response.json()["code"] == "rate_limited"
        assert int(response.headers["retry-after"]) >= 1
    finally:
        server.stop()


def test_two_processes_sharing_redis_share_the_limits(tmp_path: Path, redis_prefix: str) -> None:
    # A generous Redis timeout, as in tests/auth/test_ratelimit_shared.py: on a loaded machine 100 concurrent
    # requests may wait longer than the default 50 ms, which (correctly) switches a process to its in-process
    # fallback and would break the sharing tested here.
    env = environment(
        tmp_path, daily_quota="40", redis_url=REDIS_URL, redis_key_prefix=redis_prefix, redis_timeout_seconds="2"
    )
    key = make_key(env)
    servers = [Server(env), Server(env)]
    for server in servers:
        server.wait_ready()

    async def burst() -> list[int]:
        async with httpx.AsyncClient(headers={"x-api-key": key}) as http:
            responses = await asyncio.gather(*(http.get(f"{servers[i % 2].url}/capabilities") for i in range(100)))
        return [r.status_code for r in responses]

    try:
        statuses = asyncio.run(burst())
    finally:
        for server in servers:
            server.stop()
    assert statuses.count(200) == 40
    assert statuses.count(429) == 60
