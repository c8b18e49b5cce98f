"""`capgate serve --workers N`: a legacy MCP session opened by one worker works when its requests land on another."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CAPGATE, capgate_env
from tests.e2e.test_deploy import replica, requests_seen
from tests.e2e.test_replicas_lb import list_tools, open_session

pytestmark = pytest.mark.e2e


def owners(database: Path) -> dict[str, str]:
    with sqlite3.connect(database) as connection:
        return dict(connection.execute("SELECT session_id, owner_url FROM mcp_session_owners").fetchall())


def test_a_legacy_session_works_whichever_worker_a_request_lands_on(tmp_path: Path) -> None:
    env = capgate_env(tmp_path / "var")
    server = replica(tmp_path, 0, env)
    server.cli("init")
    created = server.create_key("demo")
    with server.log_path.open("ab") as log:
        server.process = subprocess.Popen(
            [*CAPGATE, "serve", "--port", str(server.port), "--workers", "2"],
            env=server.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        server.wait_healthy()
        # Each request is a new connection, so the kernel hands it to either worker.
        sessions = [open_session(server.url, created["key"]) for _ in range(6)]
        claimed = owners(tmp_path / "var" / "capgate.db")
        assert set(sessions) <= set(claimed)
        worker_urls = set(claimed.values())
        assert all(url.startswith("http://127.0.0.1:") and url != server.url for url in worker_urls), worker_urls
        statuses = [list_tools(server.url, created["key"], session_id).status_code for session_id in sessions * 4]
        assert statuses == [200] * len(statuses)
        if len(worker_urls) > 1:  # both workers opened sessions: requests that crossed were relayed (logged twice)
            assert requests_seen(server, created["id"]) > 2 * len(sessions) + len(statuses)
        with httpx.Client(timeout=EVENTUALLY) as http:  # another key is still refused, wherever it lands
            other = server.create_key("demo")["key"]
            headers = {"Authorization": f"Bearer {other}", "Mcp-Session-Id": sessions[0]}
            assert http.get(f"{server.url}/mcp", headers=headers).status_code in (404, 406)
    finally:
        server.stop()
