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
INVALID_KINDS = ("random_strings", "bad_checksums", "unknown_ids")  # goal 7: not one argon2 run for these


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


async def paced_flood(port: int, requests: Sequence[bytes], rate: float, until: float, connections: int = 8) -> int:
    """Invalid keys at ``rate``/s (open loop, over ``connections``) until ``until``; returns how many were sent."""
    sent = 0

    async def connection(offset: int) -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        interval, due, index = connections / rate, time.perf_counter() + offset / rate, offset
        try:
            while time.perf_counter() < until:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due += interval
                writer.write(requests[index % len(requests)])
                index += connections
                status, _body = await loadgen.read_response(reader)
                if status not in (401, 429):
                    raise RuntimeError(f"a flood request answered {status}")
                sent += 1
        finally:
            writer.close()

    await asyncio.gather(*(connection(n) for n in range(connections)))
    return sent


async def valid_while_flooded(
    port: int, valid: bytes, flood_requests: Sequence[bytes] | None, rate: float, seconds: float, connections: int
) -> dict[str, float]:
    """Warm valid-key throughput over ``connections``, with a paced flood of invalid keys alongside (or none)."""
    await loadgen.measure(port, valid, 0.5, connections, warmup=0)
    if flood_requests is None:
        return await loadgen.measure(port, valid, seconds, connections, warmup=0)
    until = time.perf_counter() + seconds
    started = time.perf_counter()
    figures, sent = await asyncio.gather(
        loadgen.measure(port, valid, seconds, connections, warmup=0), paced_flood(port, flood_requests, rate, until)
    )
    return {**figures, "flood_rps": sent / (time.perf_counter() - started)}


def valid_under_flood(
    server: servers.Server, stats_file: Path, make: Callable[[], str], args: argparse.Namespace
) -> dict[str, Any]:
    """Goal 7: valid-key requests/s under a flood of ``--flood-rate`` invalid keys/s vs without, alternating rounds."""
    port = server.port
    valid = loadgen.get("/capabilities", port, [("x-api-key", server.key)])
    flood_requests = [loadgen.get("/capabilities", port, [("x-api-key", make())]) for _ in range(FLOOD_POOL)]
    rounds: dict[str, list[dict[str, float]]] = {"alone": [], "flooded": []}
    before = stats(server, stats_file)
    for number in range(args.rounds):
        for mode in ("alone", "flooded") if number % 2 == 0 else ("flooded", "alone"):
            flood = flood_requests if mode == "flooded" else None
            run = valid_while_flooded(port, valid, flood, args.flood_rate, args.seconds, args.connections)
            rounds[mode].append(asyncio.run(run))
    after = stats(server, stats_file)
    alone, flooded = loadgen.summarise(rounds["alone"]), loadgen.summarise(rounds["flooded"])
    return {
        "valid_alone": alone,
        "valid_under_flood": flooded,
        "ratio": round(flooded["rps"] / alone["rps"], 3),
        "ratio_per_round": [
            round(f["rps"] / a["rps"], 3) for a, f in zip(rounds["alone"], rounds["flooded"], strict=True)
        ],
        "flood_rps_offered": args.flood_rate,
        "flood_rps_achieved": round(statistics.median(r["flood_rps"] for r in rounds["flooded"]), 1),
        "argon2_runs": after["argon2_runs"] - before["argon2_runs"],
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold-keys", type=int, default=200, help="fresh keys whose first request is timed")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per flood")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections of the floods")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of valid keys alone / flooded")
    parser.add_argument("--flood-rate", type=float, default=1000.0, help="invalid keys/s sent alongside valid ones")
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
            under_flood = {}
            for name, make in flood_keys(real_id).items():
                under_flood[name] = valid_under_flood(server, stats_file, make, args)
                print(f"valid keys under {name}: ratio {under_flood[name]['ratio']}", flush=True)
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
        "valid_under_flood": under_flood,
        "goal_7": {
            "argon2_runs_in_floods": {name: floods[name]["argon2_runs"] for name in floods},
            "zero_argon2_for_invalid": all(floods[name]["argon2_runs"] == 0 for name in INVALID_KINDS),
            "valid_ratio_under_flood": {name: result["ratio"] for name, result in under_flood.items()},
            "ratio_goal": 0.9,
            "flood_rps_offered": args.flood_rate,
        },
        "server": "bench.uvicorn_runner (capgate serve's app and uvicorn options), one worker, SQLite, "
        "rate limiting off (CAPGATE_RATE_LIMIT_ENABLED=false)",
        "load": {
            "flood_connections": args.connections,
            "flood_seconds": args.seconds,
            "flood_pool": FLOOD_POOL,
            "valid_under_flood": "valid key on --connections closed-loop connections, --flood-rate invalid keys/s "
            "paced over 8 more; --rounds alternating rounds of --seconds, medians",
            "load_average_after": [round(value, 2) for value in os.getloadavg()],
        },
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print("→", args.output)


if __name__ == "__main__":
    main()
