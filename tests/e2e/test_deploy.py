"""deploy/: three replicas on PostgreSQL + Redis behind the HAProxy configuration, draining, workers, manifests."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CapgateProcess, capgate_env, free_port, poll_until
from tests.mcp_helpers import mcp_client

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def assert_shut_down_cleanly(server: CapgateProcess) -> None:
    """uvicorn re-raises the SIGTERM it handled once it has shut down, so the exit status is -SIGTERM."""
    assert server.process is not None
    assert server.process.wait(timeout=EVENTUALLY) in (0, -signal.SIGTERM)
    assert "Application shutdown complete." in server.log_text()


def replica(tmp_path: Path, index: int, env: dict[str, str]) -> CapgateProcess:
    data_dir = tmp_path / f"replica-{index}"
    data_dir.mkdir(exist_ok=True)
    return CapgateProcess(data_dir=data_dir, env=dict(env), port=free_port(), log_path=data_dir / "server.log")


def shared_env(tmp_path: Path, database_url: str, **extra: str) -> dict[str, str]:
    """What every replica shares: one PostgreSQL database, one Redis (own key prefix), one pepper."""
    return capgate_env(
        tmp_path / "shared",
        database_url,
        CAPGATE_PEPPER=secrets.token_urlsafe(32),
        CAPGATE_REDIS_URL="redis://127.0.0.1:6379/0",
        CAPGATE_REDIS_KEY_PREFIX=f"capgate-test-{secrets.token_hex(4)}",
        **extra,
    )


@pytest.fixture
def replica_env(tmp_path: Path, empty_postgres_url: str) -> dict[str, str]:
    return shared_env(tmp_path, empty_postgres_url, CAPGATE_SHUTDOWN_DRAIN_SECONDS="2")


@pytest.fixture
def replicas(tmp_path: Path, replica_env: dict[str, str]) -> Iterator[list[CapgateProcess]]:
    servers = [replica(tmp_path, index, replica_env) for index in range(3)]
    for server in servers:
        server.launch()
    try:
        for server in servers:
            server.wait_healthy()
        servers[0].cli("init")  # the demo organization, made once for all three
        yield servers
    finally:
        for server in servers:
            server.stop()


def render_haproxy(replicas: list[CapgateProcess], port: int) -> str:
    config = (DEPLOY / "haproxy.cfg").read_text().replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{port}")
    for index, server in enumerate(replicas, start=1):
        config = config.replace(f"127.0.0.1:870{index}", f"127.0.0.1:{server.port}")
    return config


@pytest.fixture
def balancer(tmp_path: Path, replicas: list[CapgateProcess]) -> Iterator[str]:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("haproxy is not installed: .ci/run installs Debian's haproxy (apt-get install haproxy)")
    port = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(render_haproxy(replicas, port))
    with (tmp_path / "haproxy.log").open("ab") as log:
        process = subprocess.Popen([haproxy, "-f", str(config), "-db"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        poll_until(lambda: _ready(url), timeout=EVENTUALLY)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=EVENTUALLY)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def requests_seen(server: CapgateProcess, key_id: str) -> int:
    return len(re.findall(rf'"key_id": "{key_id}"', server.log_text()))


async def test_three_replicas_behind_haproxy_serve_mcp_and_share_revocations(
    replicas: list[CapgateProcess], balancer: str
) -> None:
    created = replicas[0].create_key("demo")
    async with mcp_client(f"{balancer}/mcp", created["key"], mode="auto") as client:
        for round_number in range(9):
            result = await client.call_tool("example_echo", {"text": f"round {round_number}"})
            assert not result.is_error, result.content
    # Round robin without stickiness: every replica answered some of those calls.
    assert all(requests_seen(server, created["id"]) > 0 for server in replicas)

    curl = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", f"x-api-key: {created['key']}",
         f"{balancer}/capabilities"],
        capture_output=True, text=True, timeout=EVENTUALLY,
    )  # fmt: skip
    assert curl.stdout == "200"

    replicas[0].cli("keys", "revoke", created["id"])
    for server in replicas[1:]:
        poll_until(
            lambda server=server: (
                httpx.get(f"{server.url}/capabilities", headers={"x-api-key": created["key"]}).status_code == 401
            ),
            timeout=2.0,
        )


async def test_a_draining_replica_leaves_the_balancer_without_failing_a_call(
    replicas: list[CapgateProcess], balancer: str
) -> None:
    created = replicas[0].create_key("demo")
    headers = {"x-api-key": created["key"]}
    draining = replicas[1]
    assert draining.process is not None
    with httpx.Client(base_url=balancer, headers=headers, timeout=EVENTUALLY) as http:
        draining.process.send_signal(signal.SIGTERM)
        poll_until(lambda: httpx.get(f"{draining.url}/readyz").status_code == 503, timeout=EVENTUALLY)
        statuses = [http.get("/capabilities").status_code for _ in range(30)]
    assert statuses == [200] * 30
    assert_shut_down_cleanly(draining)


def test_sigterm_drains_first_then_lets_the_running_call_finish(tmp_path: Path) -> None:
    env = capgate_env(tmp_path / "var", CAPGATE_SHUTDOWN_DRAIN_SECONDS="1")
    server = replica(tmp_path, 0, env)
    server.cli("init")
    key = server.create_key("demo")["key"]
    server.launch()
    server.wait_healthy()
    assert server.process is not None
    with httpx.Client(base_url=server.url, headers={"x-api-key": key}, timeout=EVENTUALLY) as http:
        outcome: dict[str, Any] = {}

        def long_call() -> None:
            body = {"input": {"steps": 20, "interval_ms": 100}}
            outcome["response"] = http.post("/api/runtime/tools/example_countdown", json=body)

        caller = threading.Thread(target=long_call)
        caller.start()
        poll_until(lambda: http.get("/api/runtime/sessions").json()["sessions"], timeout=EVENTUALLY)
        server.process.send_signal(signal.SIGTERM)
        assert httpx.get(f"{server.url}/readyz").json() == {"status": "draining"}
        caller.join(timeout=EVENTUALLY)
    assert outcome["response"].status_code == 200
    assert outcome["response"].json()["status"] == "succeeded"
    assert_shut_down_cleanly(server)


def test_serve_with_workers_runs_that_many_processes(tmp_path: Path) -> None:
    env = capgate_env(tmp_path / "var")
    server = replica(tmp_path, 0, env)
    server.cli("init")
    key = server.create_key("demo")["key"]
    with server.log_path.open("ab") as log:
        server.process = subprocess.Popen(
            [*_capgate(), "serve", "--port", str(server.port), "--workers", "2"],
            env=server.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        server.wait_healthy()
        assert httpx.get(f"{server.url}/capabilities", headers={"x-api-key": key}).status_code == 200
        poll_until(lambda: len(_children(server.process.pid)) >= 2, timeout=EVENTUALLY)  # type: ignore[union-attr]
    finally:
        server.stop()


def _capgate() -> list[str]:
    from tests.e2e.harness import CAPGATE

    return CAPGATE


def _children(pid: int) -> list[int]:
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.append(int(entry))
    return children


def test_the_compose_file_runs_three_replicas_on_shared_postgres_redis_and_secrets() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    replicas = [name for name in compose["services"] if name.startswith("replica")]
    assert len(replicas) == 3
    for name in replicas:
        environment = compose["services"][name]["environment"]
        assert environment["CAPGATE_DATABASE_URL"].startswith("postgresql://")
        assert environment["CAPGATE_REDIS_URL"].startswith("redis://")
        assert environment["CAPGATE_PEPPER"].startswith("${CAPGATE_PEPPER:?")  # from the caller, never the file
        assert environment["CAPGATE_SECRET_KEY"].startswith("${CAPGATE_SECRET_KEY:?")
        assert float(environment["CAPGATE_SHUTDOWN_DRAIN_SECONDS"]) > 0
        assert "readyz" in " ".join(compose["services"][name]["healthcheck"]["test"])
    # The compose HAProxy file is haproxy.cfg with the replicas named by service.
    tested = (DEPLOY / "haproxy.cfg").read_text().splitlines()[2:]
    compose_cfg = (DEPLOY / "haproxy.compose.cfg").read_text().splitlines()[2:]
    normalise = {"0.0.0.0:8080": "127.0.0.1:8080", **{f"replica{i}:8765": f"127.0.0.1:870{i}" for i in (1, 2, 3)}}
    for old, new in normalise.items():
        compose_cfg = [line.replace(old, new) for line in compose_cfg]
    assert compose_cfg == tested


def test_the_kubernetes_manifests_have_probes_budget_and_secrets() -> None:
    documents = {doc["kind"]: doc for doc in yaml.safe_load_all((DEPLOY / "kubernetes" / "capgate.yaml").read_text())}
    assert set(documents) >= {"Deployment", "Service", "PodDisruptionBudget", "Secret"}
    secret = documents["Secret"]["stringData"]
    assert {"CAPGATE_PEPPER", "CAPGATE_SECRET_KEY", "CAPGATE_DATABASE_URL", "CAPGATE_REDIS_URL"} <= set(secret)
    deployment = documents["Deployment"]["spec"]
    assert deployment["replicas"] >= 2
    pod = deployment["template"]["spec"]
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert {"secretRef": {"name": "capgate"}} in container["envFrom"]
    env = {item["name"]: item["value"] for item in container["env"]}
    drain, timeout = float(env["CAPGATE_SHUTDOWN_DRAIN_SECONDS"]), float(env["CAPGATE_SHUTDOWN_TIMEOUT_SECONDS"])
    assert pod["terminationGracePeriodSeconds"] > drain + timeout
    assert env["CAPGATE_HOST"] == "0.0.0.0"
    budget = documents["PodDisruptionBudget"]["spec"]
    assert budget["selector"]["matchLabels"] == deployment["selector"]["matchLabels"]
    assert 0 < budget["minAvailable"] < deployment["replicas"]
