"""Starting and stopping the servers the benchmarks measure, each in its own process."""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from auth import store
from auth.hashing import SecretHasher
from server.db import create_engine, session_factory
from server.settings import Settings

CAPGATE = str(Path(sys.executable).parent / "capgate")
UNLIMITED = "1000000000"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not listen on port {port} within {timeout} s")


def wait_for_healthz(port: int, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    wait_for_port(port, process, timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        finally:
            connection.close()
        time.sleep(0.05)
    raise RuntimeError(f"/healthz on port {port} did not answer 200 within {timeout} s")


def capgate_env(data_dir: Path, port: int, **overrides: str) -> dict[str, str]:
    """Environment for a capgate process: its own data dir, quiet logs, limits far above any load."""
    env = {
        **os.environ,
        "CAPGATE_DATA_DIR": str(data_dir),
        "CAPGATE_PORT": str(port),
        "CAPGATE_LOG_LEVEL": "WARNING",
        "CAPGATE_RATE_LIMIT_PER_SECOND": UNLIMITED,
        "CAPGATE_DAILY_QUOTA": UNLIMITED,
    }
    env.pop("CAPGATE_REDIS_URL", None)
    env.pop("CAPGATE_DATABASE_URL", None)  # SQLite in the data dir
    env.update(overrides)
    return env


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([CAPGATE, *args], env=env, check=True, capture_output=True, text=True).stdout


async def create_org_and_keys(
    db: async_sessionmaker[AsyncSession], hasher: SecretHasher, *, org: str = "bench", count: int = 1
) -> list[str]:
    """The one org-and-key setup of every benchmark: an organization and ``count`` runtime keys, made
    through the store functions the CLI uses; returns the keys."""
    async with db.begin() as session:
        organization = await store.create_organization(session, name=org)
        created = [
            await store.create_api_key(
                session,
                organization=organization,
                name=f"{org}-{n}",
                scopes=["runtime"],
                hasher=hasher,
                created_by="bench",
            )
            for n in range(count)
        ]
    return [key.secret for key in created]


async def create_keys_in(data_dir: Path, *, org: str = "bench", count: int = 1) -> list[str]:
    """``create_org_and_keys`` in the (migrated) database of a server's data directory."""
    settings = Settings(data_dir=data_dir)
    engine = create_engine(settings.resolved_database_url)
    try:
        return await create_org_and_keys(
            session_factory(engine), SecretHasher(settings.argon2_parameters), org=org, count=count
        )
    finally:
        await engine.dispose()


def create_org_and_key(env: dict[str, str], org: str = "bench") -> str:
    """Migrates a server's database (through the CLI) and gives it an organization and a key; returns the key."""
    cli(env, "db", "upgrade")
    with ThreadPoolExecutor(1) as thread:  # its own event loop: callers may be inside one (bench.mcp_calls)
        return thread.submit(asyncio.run, create_keys_in(Path(env["CAPGATE_DATA_DIR"]), org=org)).result()[0]


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    key: str = ""

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(command: list[str], env: dict[str, str], port: int, *, key: str = "") -> Server:
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_healthz(port, process)
    except BaseException:
        process.kill()
        raise
    return Server(process, port, key)


def start_capgate(data_dir: Path, **overrides: str) -> Server:
    """A real `capgate serve` process with an organization and a key of its own."""
    port = free_port()
    env = capgate_env(data_dir, port, **overrides)
    key = create_org_and_key(env)
    return start([CAPGATE, "serve"], env, port, key=key)


def start_capgate_runner(data_dir: Path, stats_file: Path, **overrides: str) -> Server:
    """capgate through bench.uvicorn_runner: as `capgate serve`, and it writes the verifier's counters."""
    port = free_port()
    env = capgate_env(data_dir, port, **overrides)
    key = create_org_and_key(env)
    command = [sys.executable, "-m", "bench.uvicorn_runner", "capgate", "--port", str(port), "--stats", str(stats_file)]
    return start(command, env, port, key=key)


def start_baseline(document: Path) -> Server:
    """A bare Starlette app on uvicorn whose one JSON route returns the document in `document`."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "bench.uvicorn_runner",
        "baseline",
        "--port",
        str(port),
        "--document",
        str(document),
    ]
    return start(command, dict(os.environ), port)
