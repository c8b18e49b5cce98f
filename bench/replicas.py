"""Benchmark: capgate replicas on PostgreSQL + Redis behind HAProxy (round robin, no stickiness).

1. Revocation propagation: for each of ``--revocations`` keys, warm it on every replica, revoke it
   through one replica (in turn: 1, 2, 3) with ``DELETE /api/keys/{id}``, then ask each *other*
   replica in a tight loop until it refuses the key. Propagation = first refusal − the moment the
   revocation was acknowledged (the DELETE's 200), so it is what a client could observe;
   histogram and p50/p99 in bench/results/replicas.json.
2. MCP ``tools/call`` throughput (stateless 2026-07-28 and legacy sessions, raw-socket load
   generator of ``bench.mcp_loadgen``) through HAProxy in front of 1, 2 and 3 replicas.

Needs PostgreSQL on 127.0.0.1:5432 (user postgres, trust), Redis on 127.0.0.1:6379 and Debian's haproxy.

    .venv/bin/python -m bench.replicas [--revocations 200] [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench.mcp_loadgen import Mode, Target, drive
from bench.servers import CAPGATE, cli, free_port, wait_for_healthz, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BUCKETS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000)


async def admin(statement: str) -> None:
    connection = await asyncpg.connect(ADMIN_DSN)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


class Cluster:
    def __init__(self, base: Path, count: int) -> None:
        self.database = f"capgate_bench_{secrets.token_hex(4)}"
        asyncio.run(admin(f'CREATE DATABASE "{self.database}"'))
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")},
            "CAPGATE_DATA_DIR": str(base / "shared"),
            "CAPGATE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{self.database}",
            "CAPGATE_REDIS_URL": "redis://127.0.0.1:6379/0",
            "CAPGATE_REDIS_KEY_PREFIX": f"capgate-bench-{secrets.token_hex(4)}",
            "CAPGATE_PEPPER": secrets.token_urlsafe(32),
            "CAPGATE_LOG_LEVEL": "WARNING",
            "CAPGATE_RATE_LIMIT_PER_SECOND": "1000000000",
            "CAPGATE_DAILY_QUOTA": "1000000000",
            "CAPGATE_MAX_ACTIVE_KEYS_PER_ORGANIZATION": "100000",
        }
        cli(self.env, "db", "upgrade")
        cli(self.env, "orgs", "create", "bench")
        created = cli(self.env, "keys", "create", "--org", "bench", "--name", "manager", "--scope", "*", "--json")
        self.manager = str(json.loads(created)["key"])
        self.ports = [free_port() for _ in range(count)]
        self.processes = [
            subprocess.Popen(
                [CAPGATE, "serve", "--port", str(port)],
                env={**self.env, "CAPGATE_DATA_DIR": str(base / f"replica-{index}")},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            for index, port in enumerate(self.ports)
        ]
        for port, process in zip(self.ports, self.processes, strict=True):
            wait_for_healthz(port, process, timeout=60)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))


class Balancer:
    def __init__(self, base: Path, ports: Sequence[int]) -> None:
        config = (ROOT / "deploy" / "haproxy.cfg").read_text()
        self.port = free_port()
        config = config.replace("bind 127.0.0.1:8080", f"bind 127.0.0.1:{self.port}")
        lines = [line for line in config.splitlines() if not line.strip().startswith("server replica")]
        lines += [f"    server replica{index} 127.0.0.1:{port}" for index, port in enumerate(ports, start=1)]
        path = base / f"haproxy-{len(ports)}.cfg"
        path.write_text("\n".join(lines) + "\n")
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.process = subprocess.Popen([haproxy, "-f", str(path), "-db"], stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.process)
        wait_for_healthz(self.port, self.process)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


async def first_refusal(http: httpx.AsyncClient, key: str, acknowledged: float) -> tuple[float, float]:
    """(sent, answered) times of the first request the replica refused: the refusal began in between."""
    while time.perf_counter() < acknowledged + 5.0:
        sent = time.perf_counter()
        if (await http.get("/capabilities", headers={"x-api-key": key})).status_code == 401:
            return sent, time.perf_counter()
    raise RuntimeError("a revoked key was still accepted 5 s after its revocation")


async def propagation(cluster: Cluster, revocations: int) -> tuple[list[float], list[float]]:
    """Per other replica and revocation: seconds from the acknowledged revocation until the refusing
    request was answered (upper bound) and until it was sent (lower bound)."""
    replicas = [httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) for port in cluster.ports]
    manager = {"x-api-key": cluster.manager}
    upper: list[float] = []
    lower: list[float] = []
    try:
        for index in range(revocations):
            created = await replicas[0].post(
                "/api/keys", headers=manager, json={"name": f"k{index}", "scopes": ["runtime"]}
            )
            created.raise_for_status()
            key, key_id = created.json()["key"], created.json()["id"]
            for http in replicas:  # warm: every replica has verified and cached the key
                (await http.get("/capabilities", headers={"x-api-key": key})).raise_for_status()
            through = index % len(replicas)
            (await replicas[through].delete(f"/api/keys/{key_id}", headers=manager)).raise_for_status()
            acknowledged = time.perf_counter()
            others = [http for position, http in enumerate(replicas) if position != through]
            refusals = await asyncio.gather(*(first_refusal(http, key, acknowledged) for http in others))
            upper.extend(answered - acknowledged for _, answered in refusals)
            lower.extend(max(0.0, sent - acknowledged) for sent, _ in refusals)
    finally:
        for http in replicas:
            await http.aclose()
    return upper, lower


def summarize(delays: Sequence[float]) -> dict[str, Any]:
    ordered = sorted(delays)
    histogram: dict[str, int] = {}
    lower = 0
    for bucket in BUCKETS_MS:
        histogram[f"{lower}-{bucket} ms"] = sum(1 for d in ordered if lower <= d * 1000 < bucket)
        lower = bucket
    histogram[f">= {lower} ms"] = sum(1 for d in ordered if d * 1000 >= lower)

    def quantile(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 2)

    return {
        "samples": len(ordered),
        "p50_ms": quantile(0.5),
        "p90_ms": quantile(0.9),
        "p99_ms": quantile(0.99),
        "max_ms": round(ordered[-1] * 1000, 2),
        "histogram": histogram,
    }


def throughput(base: Path, cluster: Cluster, modes: Sequence[Mode], seconds: float, connections: int) -> dict[str, Any]:
    created = cli(cluster.env, "keys", "create", "--org", "bench", "--name", "load", "--json")
    headers = {"x-api-key": str(json.loads(created)["key"])}
    results: dict[str, Any] = {}
    for count in range(1, len(cluster.ports) + 1):
        balancer = Balancer(base, cluster.ports[:count])
        try:
            target = Target(port=balancer.port, headers=headers)
            asyncio.run(drive(target, "stateless", seconds=1.0, connections=connections))  # warm every replica
            for mode in modes:
                figures = asyncio.run(drive(target, mode, seconds=seconds, connections=connections))
                results[f"{count} replica{'s' if count > 1 else ''} {mode}"] = {
                    key: round(value, 2) for key, value in figures.items()
                }
                print(f"{count} replicas, {mode}: {figures['rps']:.0f} calls/s, p99 {figures['p99_ms']:.1f} ms")
        finally:
            balancer.stop()
    return results


def main(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.replicas")
    parser.add_argument("--revocations", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--modes", default="stateless,legacy")
    options = parser.parse_args(args)
    modes: list[Mode] = [mode for mode in ("stateless", "legacy") if mode in options.modes.split(",")]
    with tempfile.TemporaryDirectory(prefix="capgate-bench-replicas-") as directory:
        base = Path(directory)
        cluster = Cluster(base, 3)
        try:
            upper, lower = asyncio.run(propagation(cluster, options.revocations))
            revocation = {"until_refusal_answered": summarize(upper), "until_refusing_request_sent": summarize(lower)}
            for bound, figures in revocation.items():
                print(f"revocation propagation ({bound}): p50 {figures['p50_ms']} ms, p99 {figures['p99_ms']} ms")
            calls = throughput(base, cluster, modes, options.seconds, options.connections)
        finally:
            cluster.stop()
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load": os.getloadavg()},
        "setup": "3 capgate serve replicas (1 worker each) on PostgreSQL + Redis; HAProxy deploy/haproxy.cfg",
        "revocation_propagation": revocation,
        "mcp_tools_call_through_haproxy": calls,
    }
    out = ROOT / "bench" / "results" / "replicas.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
