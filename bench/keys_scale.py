"""Benchmark: GET /capabilities from 1k to 1M stored keys, SQLite and PostgreSQL (issue 12 goal 4).

Per backend, one fresh database per key count (bench.keys_seed: bulk inserts, one argon2
hash per key presented) and one capgate server per database (bench.uvicorn_runner: the app
and uvicorn options of `capgate serve`, one worker, rate limiting on with limits far above
the load, the request log at WARNING), all running at once so every measurement alternates
between the key counts in the same rounds (ascending, then descending), medians reported:

1. cold: each request presents a key this process has never seen (one argon2 run and one
   record read each); ``--cold-keys`` distinct keys per server and round;
2. warm-up: each of the warm keys (``--warm-keys``, 10k, or all stored keys if fewer) once;
3. warm: ``--seconds`` per server and round, requests spread over the warm keys;
4. cache bound: ``--unknown-ids`` distinct well-formed keys with unknown ids (each a record
   read, cached as "no such key"), more than ``key_cache_size``; the server's RSS is read from
   /proc after each step and must not grow with the number of keys seen.

argon2 runs with the benchmark's parameters (``--argon2-memory-kib``, ``--argon2-time-cost``;
the server is configured with the same, so nothing is rehashed): production parameters
(19 MiB, ~30 ms) would make warming 10k keys take minutes per server. Results:
bench/results/keys_scale.json.

    .venv/bin/python -m bench keys_scale [--counts 1000 10000 100000 1000000] [--backends sqlite postgresql]
        [--seconds 5] [--rounds 3] [--connections 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from auth.hashing import Argon2Parameters
from auth.keys import KEY_ID_LENGTH, SECRET_LENGTH, format_key, random_base62
from bench import keys_seed, loadgen, servers
from bench.verification import stats

ROOT = Path(__file__).resolve().parent.parent
SERVER_LOGS = Path(tempfile.gettempdir()) / "capgate-keyscale-logs"
STARTUP_TIMEOUT = 300.0  # seconds: on the shared 2-CPU machine at load 15-20 a server took over 30 s to listen


@dataclass
class Point:
    count: int
    server: servers.Server
    stats_file: Path
    seed_seconds: float
    database: str | None = None
    cold: list[dict[str, float]] = field(default_factory=list)
    warm: list[dict[str, float]] = field(default_factory=list)
    rss_kib: dict[str, int] = field(default_factory=dict)
    counters: dict[str, dict[str, int]] = field(default_factory=dict)

    def rss(self, moment: str) -> None:
        status = Path(f"/proc/{self.server.process.pid}/status").read_text()
        self.rss_kib[moment] = int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


async def each_once(port: int, requests: Sequence[bytes], connections: int, status: int) -> dict[str, float]:
    """Every request sent exactly once, over ``connections`` keep-alive connections."""
    queue = iter(requests)
    latencies: list[float] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request in queue:
                started = time.perf_counter()
                writer.write(request)
                answered, body = await loadgen.read_response(reader)
                latencies.append(time.perf_counter() - started)
                if answered != status:
                    raise RuntimeError(f"expected {status}, got {answered}: {body[:200]!r}")
        finally:
            writer.close()

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(min(connections, len(requests)))))
    return loadgen.latency_figures(latencies, time.perf_counter() - wall, time.process_time() - cpu)


def requests_for(port: int, keys: Sequence[str]) -> list[bytes]:
    return [loadgen.get("/capabilities", port, [("x-api-key", key)]) for key in keys]


def start_point(
    backend: str, count: int, tmp: Path, pool: Sequence[keys_seed.PoolKey], params: Argon2Parameters
) -> Point:
    data_dir, port = tmp / f"{backend}-{count}", servers.free_port()
    overrides = {
        "CAPGATE_ARGON2_TIME_COST": str(params.time_cost),
        "CAPGATE_ARGON2_MEMORY_COST": str(params.memory_cost),
        "CAPGATE_ARGON2_PARALLELISM": str(params.parallelism),
    }
    database = None
    if backend == "postgresql":
        database = f"keyscale_{os.getpid()}_{count}"
        overrides["CAPGATE_DATABASE_URL"] = asyncio.run(keys_seed.create_postgres_database(database))
    env = servers.capgate_env(data_dir, port, **overrides)
    started = time.perf_counter()
    keys_seed.seed(env, pool, count, params)
    seed_seconds = time.perf_counter() - started
    print(f"{backend} {count:>9,} keys seeded in {seed_seconds:.1f} s", flush=True)
    stats_file = tmp / f"{backend}-{count}.stats.json"
    command = [sys.executable, "-m", "bench.uvicorn_runner", "capgate", "--port", str(port), "--stats", str(stats_file)]
    log = SERVER_LOGS / f"{backend}-{count}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as stderr:  # the server's own log (WARNING and up): where a 500 is explained
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        servers.wait_for_healthz(port, process, timeout=STARTUP_TIMEOUT)
    except BaseException:
        process.kill()
        raise
    return Point(count, servers.Server(process, port), stats_file, seed_seconds, database)


def all_counted(
    points: Sequence[Point], step: str, runs: dict[int, Coroutine[Any, Any, dict[str, float]]]
) -> dict[int, dict[str, float]]:
    """Runs one step against each point's server at once, keeping the change in each one's verifier counters."""
    before = {point.count: stats(point.server, point.stats_file) for point in points}

    async def together() -> list[dict[str, float]]:
        return list(await asyncio.gather(*runs.values()))

    results = dict(zip(runs, asyncio.run(together()), strict=True))
    for point in points:
        after = stats(point.server, point.stats_file)
        previous = point.counters.get(step, {})
        counts = {name: previous.get(name, 0) + after[name] - before[point.count][name] for name in after}
        point.counters[step] = counts
    return results


def warm_set(args: argparse.Namespace, count: int) -> int:
    """Warm keys at one key count: ``--warm-keys``, or every stored key but the seeding template if fewer."""
    return int(min(args.warm_keys, count - 1))


def in_turn(points: Sequence[Point], number: int) -> Sequence[Point]:
    return points if number % 2 == 0 else list(reversed(points))


def measure_backend(points: Sequence[Point], pool: Sequence[keys_seed.PoolKey], args: argparse.Namespace) -> None:
    cold_per_round = min(args.cold_keys, (min(point.count for point in points) - 1) // args.rounds)
    for point in points:
        point.rss("started")
    for number in range(args.rounds):
        keys = [key.raw for key in pool[number * cold_per_round : (number + 1) * cold_per_round]]
        for point in in_turn(points, number):
            port = point.server.port
            step = {point.count: each_once(port, requests_for(port, keys), 16, 200)}
            figures = all_counted([point], "cold", step)[point.count]
            point.cold.append(figures)
            print(f"cold round {number + 1} {point.count:>9,}: {figures['rps']:8.1f} rps", flush=True)
    for point in points:
        point.rss("after_cold")
    # Steps that need no comparison run on every server at once (they would take minutes one by one).
    warm_up = {point.count: each_once(point.server.port, warm_requests(point, pool, args), 16, 200) for point in points}
    all_counted(points, "warm_up", warm_up)
    for point in points:
        point.rss("after_warm_up")
    for number in range(args.rounds):
        for point in in_turn(points, number):
            run = loadgen.measure(point.server.port, warm_requests(point, pool, args), args.seconds, args.connections)
            figures = all_counted([point], "warm", {point.count: run})[point.count]
            point.warm.append(figures)
            print(f"warm round {number + 1} {point.count:>9,}: {figures['rps']:8.1f} rps", flush=True)
    for point in points:
        point.rss("after_warm")
    if not args.unknown_ids:
        return
    unknown = [
        format_key("live", random_base62(KEY_ID_LENGTH), random_base62(SECRET_LENGTH)) for _ in range(args.unknown_ids)
    ]
    sweeps = {
        point.count: each_once(point.server.port, requests_for(point.server.port, unknown), 16, 401) for point in points
    }
    all_counted(points, "unknown_ids", sweeps)
    for point in points:
        point.rss("after_unknown_ids")


def warm_requests(point: Point, pool: Sequence[keys_seed.PoolKey], args: argparse.Namespace) -> list[bytes]:
    return requests_for(point.server.port, [key.raw for key in pool[: warm_set(args, point.count)]])


def report(points: Sequence[Point]) -> dict[str, Any]:
    base = {kind: loadgen.summarise(getattr(points[0], kind))["rps"] for kind in ("warm", "cold")}
    figures: dict[str, Any] = {}
    for point in points:
        entry: dict[str, Any] = {"seed_seconds": round(point.seed_seconds, 1)}
        for kind in ("warm", "cold"):
            summary = loadgen.summarise(getattr(point, kind))
            entry[kind] = {**summary, "ratio_to_first": round(summary["rps"] / base[kind], 3)}
        entry["rss_kib"] = point.rss_kib
        entry["verifier_counters"] = point.counters
        figures[str(point.count)] = entry
    flat = {
        kind: all(0.9 <= entry[kind]["ratio_to_first"] <= 1.1 for entry in figures.values())
        for kind in ("warm", "cold")
    }
    return {"by_key_count": figures, "flat_within_10_percent": flat}


def run_backend(
    backend: str, pool: Sequence[keys_seed.PoolKey], params: Argon2Parameters, args: argparse.Namespace
) -> dict[str, Any]:
    points: list[Point] = []
    with tempfile.TemporaryDirectory(prefix=f"capgate-keyscale-{backend}-") as tmp:
        try:
            for count in args.counts:
                points.append(start_point(backend, count, Path(tmp), pool, params))
            measure_backend(points, pool, args)
        finally:
            for point in points:
                point.server.stop()
            for point in points:
                if point.database:
                    asyncio.run(keys_seed.drop_postgres_database(point.database))
    return report(points)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--counts", type=int, nargs="+", default=[1_000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per server and warm round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the key counts alternate within each")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--warm-keys", type=int, default=10_000, help="distinct keys the warm requests spread over")
    parser.add_argument("--cold-keys", type=int, default=300, help="never-seen keys per server and cold round")
    parser.add_argument("--unknown-ids", type=int, default=20_000, help="distinct unknown ids in the cache-bound step")
    parser.add_argument("--argon2-memory-kib", type=int, default=1024)
    parser.add_argument("--argon2-time-cost", type=int, default=1)
    parser.add_argument("--merge", action="store_true", help="keep the other backends' results already in --output")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "keys_scale.json")
    args = parser.parse_args(argv)
    args.counts = sorted(args.counts)
    params = Argon2Parameters(time_cost=args.argon2_time_cost, memory_cost=args.argon2_memory_kib, parallelism=1)
    load_before, started = os.getloadavg(), time.perf_counter()
    pool_size = max(min(args.warm_keys, max(args.counts)), args.cold_keys * args.rounds)
    pool = keys_seed.make_pool(pool_size, params)
    print(f"{len(pool)} keys hashed in {time.perf_counter() - started:.1f} s", flush=True)
    previous = json.loads(args.output.read_text()) if args.output.exists() else {}
    backends = previous.get("backends", {}) if args.merge else {}
    for backend in args.backends:
        backends[backend] = run_backend(backend, pool, params, args)
        backends[backend]["run"] = {
            "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "load_average_before_after": [[round(v, 2) for v in load_before], [round(v, 2) for v in os.getloadavg()]],
            "options": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        }
        write(args, params, backends, load_before, started)
    for backend in args.backends:
        for count, entry in backends[backend]["by_key_count"].items():
            warm, cold = entry["warm"], entry["cold"]
            print(
                f"{backend:>10} {int(count):>9,}: warm {warm['rps']:8.1f} rps (×{warm['ratio_to_first']}), "
                f"cold {cold['rps']:7.1f} rps (×{cold['ratio_to_first']}), "
                f"RSS {max(entry['rss_kib'].values()) // 1024} MiB"
            )
    print("→", args.output)


def write(
    args: argparse.Namespace,
    params: Argon2Parameters,
    backends: dict[str, Any],
    load_before: tuple[float, float, float],
    started: float,
) -> None:
    """Writes the results so far (each backend's own run, options and load average are in its entry)."""
    document: dict[str, Any] = {
        "benchmark": "GET /capabilities vs number of stored keys: warm keys spread over --warm-keys, and cold keys "
        "(each request a key the process has not seen); ratios are to the smallest key count, same run",
        "backends": backends,
        "argon2": {
            "time_cost": params.time_cost,
            "memory_cost_kib": params.memory_cost,
            "parallelism": 1,
            "note": "benchmark parameters, server configured alike; production is 2 passes, 19,456 KiB",
        },
        "server": "bench.uvicorn_runner (capgate serve's app and uvicorn options), one worker per key count, all "
        "running at once; rate limiting on (in-process, limits far above the load), key_cache_size 10,000 (default)",
        "load": {
            "connections": args.connections,
            "seconds_per_round": args.seconds,
            "rounds": args.rounds,
            "warm_keys": args.warm_keys,
            "cold_keys_per_round": min(args.cold_keys, (args.counts[0] - 1) // args.rounds),
            "unknown_ids": args.unknown_ids,
        },
        "load_average": {"before": [round(v, 2) for v in load_before], "after": [round(v, 2) for v in os.getloadavg()]},
        "total_seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main()
