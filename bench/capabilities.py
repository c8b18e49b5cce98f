"""Benchmark: warm-key GET /capabilities through capgate vs a bare Starlette JSON route, same run.

capgate runs through bench.uvicorn_runner (the app and uvicorn options of `capgate serve`,
one worker, SQLite, rate limiting off, request log on at INFO to /dev/null); the baseline
is a bare Starlette app on the same uvicorn options whose one route returns capgate's
own capabilities document with JSONResponse (byte-for-byte the same body). The two are
measured in alternating rounds so the noise of this machine falls on both; the load
generator's ceiling is measured in the same run. Results: bench/results/capabilities.json.

    .venv/bin/python -m bench capabilities [--seconds 5] [--rounds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import loadgen, servers

ROOT = Path(__file__).resolve().parent.parent
CAPGATE_SETTINGS = {"CAPGATE_RATE_LIMIT_ENABLED": "false", "CAPGATE_LOG_LEVEL": "INFO"}
TARGETS = ("capgate", "starlette")


def fetch(server: servers.Server) -> bytes:
    headers = [("x-api-key", server.key)] if server.key else []
    status, body = asyncio.run(loadgen.exchange(server.port, loadgen.get("/capabilities", server.port, headers)))
    if status != 200:
        raise RuntimeError(f"GET /capabilities answered {status}: {body[:200]!r}")
    return body


def compare(seconds: float, rounds: int, connections: int, tmp: Path) -> dict[str, Any]:
    capgate = servers.start_capgate_runner(tmp / "capgate", tmp / "stats.json", **CAPGATE_SETTINGS)
    try:
        body = fetch(capgate)
        (tmp / "document.json").write_bytes(body)
        baseline = servers.start_baseline(tmp / "document.json")
        try:
            if fetch(baseline) != body:
                raise RuntimeError("the baseline's document differs from capgate's")
            running = {"capgate": capgate, "starlette": baseline}
            measured: dict[str, list[dict[str, float]]] = {target: [] for target in TARGETS}
            for number in range(rounds):
                for target in TARGETS if number % 2 == 0 else tuple(reversed(TARGETS)):
                    server = running[target]
                    headers = [("x-api-key", server.key)] if server.key else []
                    request = loadgen.get("/capabilities", server.port, headers)
                    result = asyncio.run(loadgen.measure(server.port, request, seconds, connections))
                    measured[target].append(result)
                    print(f"round {number + 1} {target:>9}: {result['rps']:8.1f} rps  p99 {result['p99_ms']:.2f} ms")
        finally:
            baseline.stop()
    finally:
        capgate.stop()
    stats = json.loads((tmp / "stats.json").read_text())
    return {"body_bytes": len(body), "measured": measured, "argon2_runs": stats["argon2_runs"]}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per server and round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the two servers alternate within each")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "capabilities.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="capgate-bench-") as tmp:
        run = compare(args.seconds, args.rounds, args.connections, Path(tmp))
    ceiling = loadgen.ceiling(args.seconds, args.connections, run["body_bytes"])
    print(f"load generator ceiling: {ceiling['rps']:.1f} rps")
    results = {target: loadgen.summarise(rounds) for target, rounds in run["measured"].items()}
    pairs = zip(run["measured"]["capgate"], run["measured"]["starlette"], strict=True)
    per_round = [capgate["rps"] / starlette["rps"] for capgate, starlette in pairs]
    ratio = round(results["capgate"]["rps"] / results["starlette"]["rps"], 3)
    document: dict[str, Any] = {
        "benchmark": "warm-key GET /capabilities: capgate vs bare Starlette JSON route, same document, same run",
        "ratio": ratio,
        "goal": 0.85,
        "ratio_per_round": [round(value, 3) for value in per_round],
        "results": results,
        "per_request_added_us": round((1 / results["capgate"]["rps"] - 1 / results["starlette"]["rps"]) * 1e6, 1),
        "body_bytes": run["body_bytes"],
        "argon2_runs_during_run": run["argon2_runs"],
        "load_generator_ceiling": ceiling,
        "servers": "one uvicorn worker each, same options as `capgate serve` (httptools/uvloop when installed), "
        "capgate on SQLite with rate limiting off (CAPGATE_RATE_LIMIT_ENABLED=false) and the request log on "
        "(INFO, to /dev/null); the baseline returns capgate's own document with JSONResponse",
        "load": {"connections": args.connections, "seconds_per_round": args.seconds, "rounds": args.rounds},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"capgate / starlette = {ratio} (goal 0.85) →", args.output)


if __name__ == "__main__":
    main()
