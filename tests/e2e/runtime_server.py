"""A real `capgate serve` process on a free port, for tests that need real HTTP streaming or a real crash."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from auth import store
from auth.errors import NotFound
from auth.hashing import Argon2Parameters, SecretHasher
from server.db import create_engine, session_factory
from tests.helpers import FAST_ARGON2, key_id_of


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(self, data_dir: Path, *, database_url: str | None = None, **settings: Any) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.database_url = database_url or f"sqlite+aiosqlite:///{data_dir / 'capgate.db'}"
        self.env = {
            **os.environ,
            "CAPGATE_DATA_DIR": str(data_dir),
            "CAPGATE_DATABASE_URL": self.database_url,
            "CAPGATE_PORT": str(self.port),
            "CAPGATE_PUBLIC_BASE_URL": self.base_url,
            "CAPGATE_PEPPER": "e2e-pepper-" + secrets.token_hex(8),
            "CAPGATE_LOG_LEVEL": "WARNING",
            **{f"CAPGATE_{name.upper()}": str(value) for name, value in {**FAST_ARGON2, **settings}.items()},
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"server-{self.port}.log"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        command = [sys.executable, "-c", "from server.cli.main import main; main()", "serve"]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"server did not come up: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, exactly like a crash."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


class Keys:
    """Creates and revokes keys directly in the server's database, as the CLI would."""

    def __init__(self, database_url: str) -> None:
        self.engine: AsyncEngine = create_engine(database_url)
        self.sessions = session_factory(self.engine)
        self.hasher = SecretHasher(Argon2Parameters(1, 1024, 1))

    async def key(self, *, scopes: list[str] | None = None, organization_name: str | None = None) -> str:
        async with self.sessions.begin() as session:
            name = organization_name or f"org-{secrets.token_hex(4)}"
            try:
                organization = await store.get_organization(session, ref=name)
            except NotFound:
                organization = await store.create_organization(session, name=name)
            created = await store.create_api_key(
                session,
                organization=organization,
                name=f"key-{secrets.token_hex(4)}",
                scopes=scopes or ["runtime"],
                hasher=self.hasher,
                created_by="test",
            )
        return created.secret

    async def revoke(self, key: str) -> None:
        async with self.sessions.begin() as session:
            await store.revoke_api_key(session, key_id=key_id_of(key), actor="test")

    async def close(self) -> None:
        await self.engine.dispose()
