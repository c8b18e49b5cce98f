"""A real capgate process on a free port, and the real CLI, for end-to-end tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.deadlines import EVENTUALLY
from tests.helpers import FAST_ARGON2

CAPGATE = [str(Path(sys.executable).with_name("capgate"))]  # the installed console script, as users run it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def capgate_env(data_dir: Path, database_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")}
    # This machine sets PYTHONDONTWRITEBYTECODE; without cached bytecode every capgate start recompiles (~2.5 s).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({f"CAPGATE_{name.upper()}": str(value) for name, value in FAST_ARGON2.items()})
    env["CAPGATE_DATA_DIR"] = str(data_dir)
    if database_url:
        env["CAPGATE_DATABASE_URL"] = database_url
    env.update(extra)
    return env


@dataclass
class CapgateProcess:
    data_dir: Path
    env: dict[str, str]
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [*CAPGATE, *args], env=self.env, capture_output=True, text=True, input=input_text, timeout=60
        )
        if check and result.returncode != 0:
            raise AssertionError(f"capgate {' '.join(args)} failed: {result.stderr}")
        return result

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "--json").stdout)

    def create_key(self, org: str, *args: str) -> dict[str, Any]:
        return self.cli_json("keys", "create", "--org", org, "--name", f"key-{os.urandom(4).hex()}", *args)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self) -> None:
        self.launch()
        self.wait_healthy()

    def launch(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [*CAPGATE, "serve", "--port", str(self.port)], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + 2 * EVENTUALLY
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"capgate exited early:\n{self.log_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"capgate did not become healthy:\n{self.log_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def running_capgate(data_dir: Path, database_url: str | None = None, **env: str) -> Iterator[CapgateProcess]:
    data_dir.mkdir(parents=True, exist_ok=True)
    server = CapgateProcess(
        data_dir=data_dir,
        env=capgate_env(data_dir, database_url, **env),
        port=free_port(),
        log_path=data_dir / "server.log",
    )
    server.env["CAPGATE_PORT"] = str(server.port)
    server.cli("init")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def poll_until(predicate: Any, *, timeout: float, interval: float = 0.02) -> float:
    """Seconds until predicate() was true; AssertionError if it never was within timeout."""
    started = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)
