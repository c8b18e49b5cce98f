"""Benchmark: cold key verification and invalid-key floods, with the argon2 runs each triggered.

One capgate server (bench.uvicorn_runner: `capgate serve`'s app and uvicorn options, one
worker, SQLite, production argon2 parameters = the defaults, rate limiting off). Cold: the
first request of each of many fresh keys, one at a time, against the same number of
requests with a warm key. Floods: random strings, well-formed keys with a bad checksum,
unknown ids, and wrong secrets of a real id; the server's KeyVerifier counters are read
(SIGUSR1 makes the runner write them) before and after each flood.
Results: bench/results/verification.json.

    .venv/bin/python -m bench verification [--cold-keys 200] [--seconds 5] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import signal
import statistics
import string
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from auth.keys import KEY_ID_LENGTH, SECRET_LENGTH, format_key, random_base62
from bench import loadgen, servers
from server.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FLOOD_POOL = 5000


async def create_keys(data_dir: Path, count: int) -> list[str]:
    """Fresh keys in the server's database, made through the store functions the CLI uses."""
    return await servers.create_keys_in(data_dir, org="cold", count=count)


async def first_requests(port: int, keys: Sequence[str]) -> list[float]:
    """Latency of one request per key, one at a time on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    latencies: list[float] = []
    try:
        for key in keys:
            started = time.perf_counter()
            writer.write(loadgen.get("/capabilities", port, [("x-api-key", key)]))
            status, body = await loadgen.read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"cold request answered {status}: {body[:200]!r}")
    finally:
        writer.close()
    return latencies


def latency_summary(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "requests": len(ordered),
        "mean_ms": round(statistics.fmean(ordered) * 1000, 3),
        "p50_ms": round(ordered[len(ordered) // 2] * 1000, 3),
        "p99_ms": round(ordered[int(len(ordered) * 0.99)] * 1000, 3),
        "max_ms": round(ordered[-1] * 1000, 3),
    }


def flood_keys(real_key_id: str) -> dict[str, Callable[[], str]]:
    alphabet = string.ascii_letters + string.digits + "-_."

    def bad_checksum() -> str:
        key = format_key("live", random_base62(KEY_ID_LENGTH), random_base62(SECRET_LENGTH))
        last = key[-1]
        return key[:-1] + ("a" if last != "a" else "b")

    return {
        "random_strings": lambda: "".join(secrets.choice(alphabet) for _ in range(secrets.randbelow(80) + 1)),
        "bad_checksums": bad_checksum,
        "unknown_ids": lambda: format_key("live", random_base62(KEY_ID_LENGTH), random_base62(SECRET_LENGTH)),
        "wrong_secrets_of_real_id": lambda: format_key("live", real_key_id, random_base62(SECRET_LENGTH)),
    }


def stats(server: servers.Server, stats_file: Path) -> dict[str, int]:
    """The server's verifier counters, fresh: asks for a dump and waits for it."""
    previous = json.loads(stats_file.read_text())["dump"] if stats_file.exists() else 0
    server.process.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if stats_file.exists():
            current = json.loads(stats_file.read_text())
            if current["dump"] > previous:
                return {name: value for name, value in current.items() if name != "dump"}
        time.sleep(0.02)
    raise RuntimeError("the server did not write its verifier counters")


def flood(server: servers.Server, stats_file: Path, make: Callable[[], str], seconds: float, connections: int) -> dict:
    requests = [loadgen.get("/capabilities", server.port, [("x-api-key", make())]) for _ in range(FLOOD_POOL)]
    before = stats(server, stats_file)
    result = asyncio.run(
        loadgen.measure(server.port, requests, seconds, connections, check=lambda s, _b: s == 401, warmup=0)
    )
    after = stats(server, stats_file)
    return {
        "requests": result["requests"],
        "distinct_keys": len(set(requests)),
        "rps": round(result["rps"], 1),
        "p50_ms": round(result["p50_ms"], 3),
        "p99_ms": round(result["p99_ms"], 3),
        "argon2_runs": after["argon2_runs"] - before["argon2_runs"],
        "verifier_counters": {name: after[name] - before[name] for name in after},
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold-keys", type=int, default=200, help="fresh keys whose first request is timed")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per flood")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections of the floods")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "verification.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="capgate-bench-") as tmp:
        data_dir, stats_file = Path(tmp) / "capgate", Path(tmp) / "stats.json"
        server = servers.start_capgate_runner(data_dir, stats_file, CAPGATE_RATE_LIMIT_ENABLED="false")
        try:
            started = time.perf_counter()
            cold_keys = asyncio.run(create_keys(data_dir, args.cold_keys))
            print(f"created {len(cold_keys)} keys in {time.perf_counter() - started:.1f} s")
            before = stats(server, stats_file)
            cold = latency_summary(asyncio.run(first_requests(server.port, cold_keys)))
            cold["argon2_runs"] = stats(server, stats_file)["argon2_runs"] - before["argon2_runs"]
            warm = latency_summary(asyncio.run(first_requests(server.port, [server.key] * (args.cold_keys + 1)))[1:])
            print(f"cold first request p50 {cold['p50_ms']} ms vs warm {warm['p50_ms']} ms")
            settings = Settings(data_dir=data_dir)
            real_id = server.key[8 : 8 + KEY_ID_LENGTH]
            floods = {}
            for name, make in flood_keys(real_id).items():
                floods[name] = flood(server, stats_file, make, args.seconds, args.connections)
                print(f"{name:>25}: {floods[name]['rps']:8.1f} rps, argon2 runs {floods[name]['argon2_runs']}")
        finally:
            server.stop()

    document: dict[str, Any] = {
        "benchmark": "cold key verification and invalid-key floods against GET /capabilities",
        "argon2": {
            "time_cost": settings.argon2_time_cost,
            "memory_cost_kib": settings.argon2_memory_cost,
            "parallelism": settings.argon2_parallelism,
            "max_concurrency": settings.argon2_max_concurrency,
            "note": "production parameters (the defaults)",
        },
        "cold_first_request": cold,
        "warm_same_connection": warm,
        "floods": floods,
        "server": "bench.uvicorn_runner (capgate serve's app and uvicorn options), one worker, SQLite, "
        "rate limiting off (CAPGATE_RATE_LIMIT_ENABLED=false)",
        "load": {"flood_connections": args.connections, "flood_seconds": args.seconds, "flood_pool": FLOOD_POOL},
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print("→", args.output)


if __name__ == "__main__":
    main()
