"""Benchmark: MCP ``tools/call`` through capgate vs. a bare ``mcp`` SDK server and FastMCP, both protocol modes.

Starts, each as its own process with one uvicorn worker: ``capgate serve`` (production
settings, except per-key limits far above the load so the rate limiter runs but never
refuses; a key warmed before measuring) and the bare SDK server of ``bench.mcp_bare``
(low-level ``Server`` + ``streamable_http_app()`` defaults, the same echo work) and the FastMCP
comparator of ``bench.mcp_fastmcp`` (``StaticTokenVerifier``, a bearer token per request). Then, round
after round and alternating which goes first, drives each with the raw-socket load
generator of ``bench.mcp_loadgen`` for the stateless 2026-07-28 protocol and for legacy
sessions (one ``initialize`` per connection, then ``tools/call`` POSTs answered as SSE).
The generator's ceiling is measured first against ``bench.mcp_trivial``. Two more capgate
processes measure observability's cost in the same run: one with metrics and decision records
off (``capgate_observability_off``), one with OpenTelemetry tracing on, exporting over OTLP/HTTP
to a local sink that answers 200 (``capgate_tracing``). Results go to bench/results/mcp_calls.json.

    .venv/bin/python -m bench.mcp_calls [--seconds 5] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import http.server
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.machine import machine
from bench.mcp_loadgen import Mode, Target, drive
from bench.servers import CAPGATE, capgate_env, create_org_and_key, free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
MODES: tuple[Mode, ...] = ("stateless", "legacy")
GOAL = 0.90
FASTMCP_GOAL = 1.2  # capgate >= 1.2 x FastMCP with a static bearer token (issue 12, goal 1)
OBSERVABILITY_GOAL = 0.05  # metrics + decision records on cost at most 5 % of throughput (tracing off)
OBSERVABILITY_OFF = {"CAPGATE_METRICS_ENABLED": "false", "CAPGATE_DECISIONS_ENABLED": "false"}
CAPGATE_ENV = {
    "CAPGATE_RATE_LIMIT_ENABLED": "true",  # the in-process limiter runs on every call...
    "CAPGATE_RATE_LIMIT_PER_SECOND": "1000000000",  # ...with limits the benchmark never reaches
    "CAPGATE_DAILY_QUOTA": "1000000000",
}


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int, headers: dict[str, str]) -> None:
        self.name = name
        self.port = port
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.target = Target(port=port, headers=headers)
        wait_for_port(port, self.process)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


class TraceSink:
    """An OTLP/HTTP endpoint that accepts every export: tracing's cost without a collector's."""

    def __init__(self) -> None:
        class Accept(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("content-length", 0)))
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Accept)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()


def start_capgate(data_dir: Path, name: str = "capgate", extra_env: dict[str, str] | None = None) -> Server:
    port = free_port()
    data_dir = data_dir / name
    data_dir.mkdir()
    # INFO: the default log level, as users run it
    env = capgate_env(data_dir, port, **{**CAPGATE_ENV, "CAPGATE_LOG_LEVEL": "INFO", **(extra_env or {})})
    key = create_org_and_key(env)
    return Server(name, [CAPGATE, "serve"], env, port, {"x-api-key": key})


def start_bare() -> Server:
    port = free_port()
    return Server("bare", [sys.executable, "-m", "bench.mcp_bare", "--port", str(port)], dict(os.environ), port, {})


def start_fastmcp() -> Server:
    port, token = free_port(), secrets.token_urlsafe(24)
    command = [sys.executable, "-m", "bench.mcp_fastmcp", "--port", str(port)]
    env = {**os.environ, "BENCH_FASTMCP_TOKEN": token}
    return Server("fastmcp", command, env, port, {"Authorization": f"Bearer {token}"})


def start_trivial() -> Server:
    port = free_port()
    return Server(
        "trivial", [sys.executable, "-m", "bench.mcp_trivial", "--port", str(port)], dict(os.environ), port, {}
    )


def summarise(rounds: list[dict[str, float]]) -> dict[str, Any]:
    return {
        "rps": round(statistics.median(r["rps"] for r in rounds), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 2),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 2),
        "server_cpu_ms_per_call": round(statistics.median(r["server_cpu_ms_per_call"] for r in rounds), 3),
        "server_cpu_fraction": round(statistics.median(r["server_cpu_fraction"] for r in rounds), 2),
        "loadgen_cpu_fraction": round(max(r["loadgen_cpu_fraction"] for r in rounds), 2),
        "rounds_rps": [round(r["rps"], 1) for r in rounds],
    }


def observability_cost(samples: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Throughput and CPU of capgate with metrics + decisions on (the default) vs off, and with tracing on."""
    on, off = summarise(samples["capgate"]), summarise(samples["capgate_observability_off"])
    tracing = summarise(samples["capgate_tracing"])
    cost = 1 - on["rps"] / off["rps"]
    return {
        "metrics_decisions_off": off,
        "tracing_on": tracing,
        "cost_rps": round(cost, 3),
        "cost_cpu_ms_per_call": round(on["server_cpu_ms_per_call"] - off["server_cpu_ms_per_call"], 3),
        "tracing_cost_rps": round(1 - tracing["rps"] / on["rps"], 3),
        "tracing_cost_cpu_ms_per_call": round(tracing["server_cpu_ms_per_call"] - on["server_cpu_ms_per_call"], 3),
        "meets_goal": cost <= OBSERVABILITY_GOAL,
    }


async def measure(server: Server, mode: Mode, seconds: float, connections: int) -> dict[str, float]:
    await drive(server.target, mode, seconds=1.0, connections=connections)  # warm: key cache, sessions, JIT-free paths
    return await drive(server.target, mode, seconds=seconds, connections=connections, server_pid=server.process.pid)


async def run(seconds: float, rounds: int, connections: int) -> dict[str, Any]:
    ceiling: dict[str, Any] = {}
    trivial = start_trivial()
    try:
        for mode in MODES:
            measured = await measure(trivial, mode, seconds, connections)
            ceiling[mode] = {k: round(v, 2) for k, v in measured.items() if not k.startswith("server_")}
    finally:
        trivial.stop()
    sink = TraceSink()
    with tempfile.TemporaryDirectory(prefix="capgate-mcp-bench-") as base:
        servers = [
            start_capgate(Path(base)),
            start_bare(),
            start_fastmcp(),
            start_capgate(Path(base), "capgate_observability_off", OBSERVABILITY_OFF),
            start_capgate(Path(base), "capgate_tracing", {"CAPGATE_OTEL_EXPORTER_OTLP_ENDPOINT": sink.url}),
        ]
        try:
            samples: dict[str, dict[str, list[dict[str, float]]]] = {m: {s.name: [] for s in servers} for m in MODES}
            for round_index in range(rounds):
                order = servers if round_index % 2 == 0 else list(reversed(servers))
                for mode in MODES:
                    for server in order:
                        result = await measure(server, mode, seconds, connections)
                        samples[mode][server.name].append(result)
                        print(
                            f"round {round_index + 1} {mode:9} {server.name:25} {result['rps']:8.1f} req/s"
                            f"  p50 {result['p50_ms']:6.2f} ms  p99 {result['p99_ms']:6.2f} ms"
                            f"  server CPU {result['server_cpu_ms_per_call']:.3f} ms/call",
                            flush=True,
                        )
        finally:
            for server in servers:
                server.stop()
            sink.stop()
    modes: dict[str, Any] = {}
    for mode in MODES:
        capgate = summarise(samples[mode]["capgate"])
        bare = summarise(samples[mode]["bare"])
        fastmcp = summarise(samples[mode]["fastmcp"])
        modes[mode] = {
            "capgate": capgate,
            "bare_sdk": bare,
            "fastmcp": fastmcp,
            "ratio_rps": round(capgate["rps"] / bare["rps"], 3),
            "meets_goal": capgate["rps"] / bare["rps"] >= GOAL,
            "ratio_fastmcp_rps": round(capgate["rps"] / fastmcp["rps"], 3),
            "meets_fastmcp_goal": capgate["rps"] / fastmcp["rps"] >= FASTMCP_GOAL,
            "observability": observability_cost(samples[mode]),
        }
    return {"loadgen_ceiling": ceiling, "modes": modes}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per server, mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the order of the servers alternates")
    parser.add_argument("--connections", type=int, default=16, help="concurrent keep-alive connections")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "mcp_calls.json")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.seconds, args.rounds, args.connections))
    report = {
        "benchmark": "MCP tools/call example_echo: capgate vs bare mcp SDK server",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "goal": f"capgate >= {GOAL} x bare SDK and >= {FASTMCP_GOAL} x FastMCP requests/s",
        "machine": machine(),
        "setup": {
            "seconds_per_measurement": args.seconds,
            "rounds": args.rounds,
            "connections": args.connections,
            "capgate_env": CAPGATE_ENV,
            "capgate_storage": "SQLite (default, WAL), log level INFO (default) to /dev/null",
            "bare_sdk": "mcp low-level Server + streamable_http_app() defaults (bench/mcp_bare.py)",
            "fastmcp": "FastMCP http_app() + StaticTokenVerifier, bearer token (bench/mcp_fastmcp.py)",
            "uvicorn_workers": 1,
        },
        **results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for mode, numbers in results["modes"].items():
        print(
            f"{mode:9} capgate {numbers['capgate']['rps']:8.1f} req/s  bare {numbers['bare_sdk']['rps']:8.1f} req/s"
            f"  ratio {numbers['ratio_rps']:.3f}  (goal {GOAL})"
        )
        print(
            f"{mode:9} FastMCP {numbers['fastmcp']['rps']:8.1f} req/s"
            f"  capgate/FastMCP {numbers['ratio_fastmcp_rps']:.3f}  (goal {FASTMCP_GOAL})"
        )
        cost = numbers["observability"]
        print(
            f"{mode:9} metrics+decisions cost {cost['cost_rps']:+.3f} of req/s ({cost['cost_cpu_ms_per_call']:+.3f}"
            f" ms CPU/call; goal <= {OBSERVABILITY_GOAL}); tracing on a further {cost['tracing_cost_rps']:+.3f}"
            f" ({cost['tracing_cost_cpu_ms_per_call']:+.3f} ms CPU/call)"
        )
    print(f"loadgen ceiling: {json.dumps(results['loadgen_ceiling'])}")


if __name__ == "__main__":
    main()
