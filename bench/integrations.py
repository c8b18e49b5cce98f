"""Benchmark: MCP ``tools/call`` of a cheap upstream tool, directly against the upstream vs through capgate.

One run, same machine, one uvicorn worker each: the upstream is the bare SDK server of
``bench.mcp_bare`` (``example_echo``); capgate (``capgate serve``, production settings, limits
far above the load) has it connected as integration ``up`` with one account, so the same
call through capgate is ``up_example_echo`` — capgate authenticates the key, records the
execution and forwards the call over its pooled client session to the upstream. The raw-socket
load generator of ``bench.mcp_loadgen`` drives the stateless 2026-07-28 protocol: one
connection for latency (capgate's added p50 = p50 through capgate − p50 direct) and
``--connections`` for throughput, round after round, alternating which goes first. For
attribution, each round also times the same call made with the SDK client alone
(``sdk_client_hop_p50_ms``): the part of the added latency that is the upstream hop itself.
Results go to bench/results/integrations.json.

    .venv/bin/python -m bench integrations [--seconds 3] [--rounds 3] [--connections 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.mcp_calls import CAPGATE_ENV, Server
from bench.mcp_loadgen import Target, drive
from bench.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
CAPGATE = str(Path(sys.executable).parent / "capgate")
GOALS = {"added_p50_ms": 1.0, "throughput_ratio": 0.5}


def start_upstream() -> Server:
    port = free_port()
    return Server("direct", [sys.executable, "-m", "bench.mcp_bare", "--port", str(port)], dict(os.environ), port, {})


def start_capgate_with_upstream(data_dir: Path, upstream_port: int) -> Server:
    port = free_port()
    env = {**os.environ, **CAPGATE_ENV, "CAPGATE_DATA_DIR": str(data_dir), "CAPGATE_PORT": str(port)}
    for name in ("CAPGATE_REDIS_URL", "CAPGATE_DATABASE_URL", "CAPGATE_LOG_LEVEL"):
        env.pop(name, None)

    def cli(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([CAPGATE, *args], env=env, check=True, capture_output=True, text=True, input=stdin)
        return done.stdout

    cli("db", "upgrade")
    cli("orgs", "create", "bench")
    cli("integrations", "add", "up", "--org", "bench", "--url", f"http://127.0.0.1:{upstream_port}/mcp")
    cli("accounts", "connect", "up", "--org", "bench", "--label", "bench", "--secret-stdin", stdin="bench-token")
    key = json.loads(cli("keys", "create", "--org", "bench", "--name", "bench", "--json"))["key"]
    server = Server("capgate", [CAPGATE, "serve"], env, port, {"x-api-key": key})
    server.target = Target(port=port, headers={"x-api-key": key}, tool="up_example_echo")
    return server


async def sdk_client_p50_ms(port: int, seconds: float) -> float:
    """The same call made with the SDK client capgate uses upstream, one at a time: the hop's own cost."""
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    latencies: list[float] = []
    async with httpx2.AsyncClient() as http:
        transport = streamable_http_client(f"http://127.0.0.1:{port}/mcp", http_client=http)
        async with Client(transport, mode="auto", cache=None) as client:
            until = time.perf_counter() + seconds
            while time.perf_counter() < until:
                started = time.perf_counter()
                await client.call_tool("example_echo", {"text": "hello from the benchmark"})
                latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000


async def measure(server: Server, seconds: float, connections: int) -> dict[str, float]:
    await drive(server.target, "stateless", seconds=0.5, connections=connections)  # warm: key cache, upstream session
    return await drive(
        server.target, "stateless", seconds=seconds, connections=connections, server_pid=server.process.pid
    )


def median(rounds: list[dict[str, float]], name: str) -> float:
    return float(statistics.median(r[name] for r in rounds))


async def run(seconds: float, rounds: int, connections: int) -> dict[str, Any]:
    upstream = start_upstream()
    with tempfile.TemporaryDirectory(prefix="capgate-integrations-bench-") as base:
        capgate = start_capgate_with_upstream(Path(base), upstream.port)
        samples: dict[str, dict[str, list[dict[str, float]]]] = {
            kind: {"direct": [], "capgate": []} for kind in ("latency", "throughput")
        }
        sdk_hop: list[float] = []
        try:
            for round_index in range(rounds):
                order = [upstream, capgate] if round_index % 2 == 0 else [capgate, upstream]
                sdk_hop.append(await sdk_client_p50_ms(upstream.port, seconds))
                for kind, count in (("latency", 1), ("throughput", connections)):
                    for server in order:
                        result = await measure(server, seconds, count)
                        samples[kind][server.name].append(result)
                        print(
                            f"round {round_index + 1} {kind:10} {server.name:7} {result['rps']:8.1f} req/s"
                            f"  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms",
                            flush=True,
                        )
        finally:
            capgate.stop()
            upstream.stop()
    latency = {name: round(median(samples["latency"][name], "p50_ms"), 3) for name in ("direct", "capgate")}
    rps = {name: round(median(samples["throughput"][name], "rps"), 1) for name in ("direct", "capgate")}
    added = round(latency["capgate"] - latency["direct"], 3)
    ratio = round(rps["capgate"] / rps["direct"], 3)
    return {
        "p50_ms_one_connection": latency,
        "added_p50_ms": added,
        "sdk_client_hop_p50_ms": round(statistics.median(sdk_hop), 3),
        "p99_ms_one_connection": {
            name: round(median(samples["latency"][name], "p99_ms"), 3) for name in ("direct", "capgate")
        },
        "rps": rps,
        "throughput_ratio": ratio,
        "capgate_cpu_ms_per_call": round(median(samples["throughput"]["capgate"], "server_cpu_ms_per_call"), 3),
        "upstream_cpu_ms_per_call_direct": round(median(samples["throughput"]["direct"], "server_cpu_ms_per_call"), 3),
        "meets_goals": {"added_p50_ms": added <= GOALS["added_p50_ms"], "throughput_ratio": ratio >= 0.5},
        "rounds": {kind: {k: [round(r["rps"], 1) for r in v] for k, v in by.items()} for kind, by in samples.items()},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="measured seconds per server, load and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the order of the servers alternates")
    parser.add_argument("--connections", type=int, default=8, help="concurrent connections for throughput")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "integrations.json")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.seconds, args.rounds, args.connections))
    report = {
        "benchmark": "MCP tools/call of an upstream echo tool: directly vs through capgate (integration account)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "goals": GOALS,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "setup": {
            "seconds_per_measurement": args.seconds,
            "rounds": args.rounds,
            "throughput_connections": args.connections,
            "protocol": "stateless 2026-07-28 (JSON answers)",
            "upstream": "bench/mcp_bare.py: mcp low-level Server + streamable_http_app(), one uvicorn worker",
            "capgate": "capgate serve, one worker, SQLite, limits far above the load; upstream over one pooled session",
        },
        **results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"p50 direct {results['p50_ms_one_connection']['direct']} ms, through capgate"
        f" {results['p50_ms_one_connection']['capgate']} ms: added {results['added_p50_ms']} ms"
        f" (goal <= {GOALS['added_p50_ms']}); throughput {results['rps']['capgate']} vs {results['rps']['direct']}"
        f" req/s: ratio {results['throughput_ratio']} (goal >= {GOALS['throughput_ratio']})"
    )


if __name__ == "__main__":
    main()
