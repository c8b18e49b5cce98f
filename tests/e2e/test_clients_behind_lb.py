"""The real-client round trips, through HAProxy round robin in front of three replicas (no stickiness)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.clients_toolchain import snippet
from tests.e2e.harness import CapgateProcess
from tests.e2e.test_clients_python import fastmcp_round_trip, sdk_round_trip
from tests.e2e.test_deploy import balancer, replicas, requests_seen  # noqa: F401  (fixtures)
from tests.e2e.test_replicas_lb import replica_env  # noqa: F401  (fixture)

pytestmark = pytest.mark.e2e


async def test_official_sdk_both_modes_fastmcp_and_curl_work_through_the_balancer(
    replicas: list[CapgateProcess],  # noqa: F811
    balancer: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    created = replicas[0].create_key("demo")
    key, url = created["key"], f"{balancer}/mcp"
    for mode in ("legacy", "auto"):
        assert {"memory_write", "memory_read"} <= set(await sdk_round_trip(url, key, mode))
    assert {"memory_write", "memory_read"} <= set(await fastmcp_round_trip(url, key))

    script = tmp_path / "curl.sh"
    script.write_text(snippet("curl", balancer))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")} | {"CAPGATE_API_KEY": key}
    ran = subprocess.run(["bash", str(script), "all"], env=env, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    events = [json.loads(line.removeprefix("data: ")) for line in ran.stdout.splitlines() if line.startswith("data: ")]
    assert [event["type"] for event in events] == ["started", "completed"]
    assert all(requests_seen(server, created["id"]) > 0 for server in replicas)
