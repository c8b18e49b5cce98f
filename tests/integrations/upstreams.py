"""Real upstream MCP servers for the integration tests, started as processes by the tests (fixtures and helpers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.harness import free_port

ROOT = Path(__file__).parents[2]
TOKENS = {
    "a1": "tok-a1-" + os.urandom(6).hex(),
    "a2": "tok-a2-" + os.urandom(6).hex(),
    "b": "tok-b-" + os.urandom(6).hex(),
}


@dataclass
class Upstream:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def events(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def wait_for(self, event: str, marker: str, timeout: float = 20) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for entry in self.events():
                if entry["event"] == event and entry.get("marker") == marker:
                    return entry
            time.sleep(0.02)
        raise AssertionError(f"upstream never logged {event} {marker}: {self.events()}")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def upstream_env(log_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return {**env, "UPSTREAM_LOG": str(log_path), "PYTHONPATH": str(ROOT), **extra}


def start_http_upstream(tmp: Path, port: int | None = None) -> Upstream:
    port = port or free_port()
    log_path = tmp / f"upstream-{port}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.integrations.upstream_server", "http", str(port)],
        env=upstream_env(log_path, UPSTREAM_TOKENS=",".join(TOKENS.values())),
        cwd=ROOT,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError("test upstream exited early")
        try:
            if httpx.post(url, timeout=1).status_code == 401:  # up, and asking for its token
                return Upstream(url, log_path, process)
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("test upstream did not start")


@pytest.fixture(scope="session")
def http_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    upstream = start_http_upstream(tmp_path_factory.mktemp("upstream"))
    yield upstream
    upstream.stop()


@pytest.fixture
def stdio_command() -> list[str]:
    return [sys.executable, "-m", "tests.integrations.upstream_server", "stdio"]
