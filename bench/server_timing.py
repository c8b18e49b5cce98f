"""Benchmark: what the ``Server-Timing`` header itself costs (issue 12 goal 6: < 2 %).

Two ``capgate serve`` processes, identical but for ``CAPGATE_SERVER_TIMING`` (on / off), one worker
each (SQLite, rate limiting on with limits far above the load, the
request log on), driven in alternating rounds with warm-key ``GET /capabilities`` — the cheapest
authenticated route, where a fixed per-request cost shows most. Reported: requests/s and server
CPU per request of each, the cost as a fraction of throughput and of CPU. Results:
bench/results/server_timing.json.

    .venv/bin/python -m bench server_timing [--seconds 4] [--rounds 6] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import loadgen, servers
from bench.mcp_loadgen import process_cpu_seconds

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("timing_on", "timing_off")


def measure(server: servers.Server, seconds: float, connections: int) -> dict[str, float]:
    request = loadgen.get("/api/runtime/capabilities", server.port, [("x-api-key", server.key)])
    cpu = process_cpu_seconds(server.process.pid)
    result = asyncio.run(loadgen.measure(server.port, request, seconds, connections, warmup=0))
    result["server_cpu_us_per_request"] = (process_cpu_seconds(server.process.pid) - cpu) * 1e6 / result["requests"]
    return result


async def python_calls_per_request(tmp: Path, rounds: int = 6, requests: int = 500) -> dict[str, float]:
    """Python function calls per warm ``GET /api/runtime/capabilities``, in process (ASGI, no sockets), header on
    and off: a count, not a time, so it does not move with the machine's load (the minimum over the rounds
    leaves out background tasks that happen to run inside one)."""
    import cProfile
    import pstats

    from asgi_lifespan import LifespanManager

    from server.app import create_app
    from server.db import create_engine
    from server.migrate import upgrade_database
    from tests.helpers import KeyFactory, make_settings

    settings = make_settings(tmp, f"sqlite+aiosqlite:///{tmp / 'calls.db'}", rate_limit_enabled=False)
    engine = create_engine(settings.resolved_database_url)
    await upgrade_database(engine)
    await engine.dispose()
    apps = {
        "timing_on": create_app(settings),
        "timing_off": create_app(settings.model_copy(update={"server_timing": False})),
    }
    counts: dict[str, list[float]] = {target: [] for target in TARGETS}
    async with LifespanManager(apps["timing_on"]), LifespanManager(apps["timing_off"]):
        state = apps["timing_on"].state.capgate
        keys = KeyFactory(sessions=state.sessions, hasher=state.hasher, verifier=state.verifier)
        key = (await keys.key(await keys.organization())).encode()
        scope = {
            "type": "http", "method": "GET", "path": "/api/runtime/capabilities", "query_string": b"",
            "raw_path": b"/api/runtime/capabilities", "headers": [(b"host", b"capgate.test"), (b"x-api-key", key)],
            "client": ("127.0.0.1", 1), "server": ("capgate.test", 80), "scheme": "http", "http_version": "1.1",
            "root_path": "", "asgi": {"version": "3.0"},
        }  # fmt: skip

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(_message: Any) -> None:
            return None

        for number in range(rounds + 1):
            for target in TARGETS if number % 2 == 0 else tuple(reversed(TARGETS)):
                profile = cProfile.Profile()
                profile.enable()
                for _ in range(requests):
                    await apps[target](dict(scope), receive, send)
                profile.disable()
                if number:  # the first round warms both
                    counts[target].append(pstats.Stats(profile).total_calls / requests)
    return {target: min(values) for target, values in counts.items()}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "server_timing.json")
    args = parser.parse_args(argv)
    measured: dict[str, list[dict[str, float]]] = {target: [] for target in TARGETS}
    with tempfile.TemporaryDirectory(prefix="capgate-bench-") as tmp:
        running = {
            target: servers.start_capgate(
                Path(tmp) / target,
                CAPGATE_SERVER_TIMING="true" if target == "timing_on" else "false",
                CAPGATE_LOG_LEVEL="INFO",
            )
            for target in TARGETS
        }
        try:
            for server in running.values():
                measure(server, 1.0, args.connections)  # warm the key and the caches
            for number in range(args.rounds):
                for target in TARGETS if number % 2 == 0 else tuple(reversed(TARGETS)):
                    result = measure(running[target], args.seconds, args.connections)
                    measured[target].append(result)
                    print(
                        f"round {number + 1} {target:>10}: {result['rps']:8.1f} rps"
                        f"  CPU {result['server_cpu_us_per_request']:.1f} µs/request"
                    )
        finally:
            for server in running.values():
                server.stop()
        calls = asyncio.run(python_calls_per_request(Path(tmp)))
    summary = {target: loadgen.summarise(rounds) for target, rounds in measured.items()}
    cpu = {
        target: statistics.median(r["server_cpu_us_per_request"] for r in rounds) for target, rounds in measured.items()
    }
    ratio = summary["timing_on"]["rps"] / summary["timing_off"]["rps"]
    cpu_cost = cpu["timing_on"] / cpu["timing_off"] - 1
    call_cost = calls["timing_on"] / calls["timing_off"] - 1
    document: dict[str, Any] = {
        "benchmark": "Server-Timing header on vs off, warm-key GET /api/runtime/capabilities, same run",
        "cost": round(call_cost, 4),
        "cost_measure": "extra Python function calls per request with the header, in process (deterministic); "
        "the throughput and CPU figures below swing by tens of % between rounds on this machine",
        "python_calls_per_request": {target: round(value, 1) for target, value in calls.items()},
        "ratio": round(ratio, 3),
        "cost_fraction_throughput": round(1 - ratio, 3),
        "cost_fraction_cpu": round(cpu_cost, 3),
        "goal": "cost < 0.02",
        "ratio_per_round": [
            round(on["rps"] / off["rps"], 3)
            for on, off in zip(measured["timing_on"], measured["timing_off"], strict=True)
        ],
        "server_cpu_us_per_request": {target: round(value, 1) for target, value in cpu.items()},
        "results": summary,
        "load": {"connections": args.connections, "seconds_per_round": args.seconds, "rounds": args.rounds},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(
        f"Server-Timing adds {call_cost:+.1%} Python calls per request; throughput {1 - ratio:+.1%},"
        f" CPU {cpu_cost:+.1%} (noisy; goal < 2 %) →",
        args.output,
    )


if __name__ == "__main__":
    main()
