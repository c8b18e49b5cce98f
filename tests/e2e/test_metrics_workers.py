"""`capgate serve --workers 2`: one scrape sums every worker's counters, on the keyless bind and on /metrics."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CAPGATE, capgate_env, free_port

pytestmark = pytest.mark.e2e
CALLS = 24


def capabilities_200s(exposition: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "http_server_request_duration_seconds_count" and labels.get("route") == "/capabilities":
                if labels.get("status") == "200":
                    return sample.value
    return 0.0


def propagations(exposition: str) -> float:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "capgate_revocation_propagation_seconds_count":
                return sample.value
    return 0.0


def test_two_workers_are_scraped_as_one(tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    env = capgate_env(tmp_path, CAPGATE_PORT=str(port), CAPGATE_METRICS_BIND=f"127.0.0.1:{metrics_port}")

    def cli(*args: str) -> str:
        result = subprocess.run([*CAPGATE, *args], env=env, capture_output=True, text=True, timeout=EVENTUALLY)
        assert result.returncode == 0, result.stderr
        return result.stdout

    cli("init")
    cli("orgs", "create", "ops")
    import json

    scraper = json.loads(cli("keys", "create", "--org", "ops", "--name", "prom", "--scope", "metrics:read", "--json"))
    agent = json.loads(cli("keys", "create", "--org", "ops", "--name", "agent", "--json"))
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen([*CAPGATE, "serve", "--workers", "2"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 2 * EVENTUALLY
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.05)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"x-api-key": agent["key"]}) as http:
            for _ in range(CALLS):  # new connections, so both workers take some
                assert http.get("/capabilities", headers={"connection": "close"}).status_code == 200
        keyless = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        assert capabilities_200s(keyless) == CALLS
        keyed = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"x-api-key": scraper["key"]}, timeout=5)
        assert keyed.status_code == 200 and capabilities_200s(keyed.text) == CALLS
        assert httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"x-api-key": agent["key"]}).status_code == 403
        assert agent["id"] not in keyless and scraper["id"] not in keyless
        assert len(list((tmp_path / "metrics").glob("*.db"))) >= 2  # one file set per worker
        assert '"logger": "capgate.request"' in (tmp_path / "server.log").read_text()  # workers log JSON too
        cli("keys", "revoke", agent["id"])  # another process: each worker learns it from its change feed
        deadline = time.monotonic() + EVENTUALLY
        while propagations(httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text) < 2:
            assert time.monotonic() < deadline, "the revocation did not reach both workers"
            time.sleep(0.05)
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()
