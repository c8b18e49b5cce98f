"""Benchmark: GET /capabilities with rate limiting off, in-process and Redis, in one run.

Starts one real `capgate serve` (uvicorn) process per mode, each with its own data
directory and a key whose limits are far above the load (so the limiter's cost is
measured, not its refusals), then drives them one after another, round after round,
with a load generator of raw asyncio sockets (keep-alive HTTP/1.1, no client library:
httpx tops out far below the server here). The generator's own CPU use is recorded so a
reader can see it was not the bottleneck. Results go to bench/results/ratelimit.json.

    .venv/bin/python bench/ratelimit.py [--seconds 5] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CAPGATE = str(Path(sys.executable).parent / "capgate")
REDIS_URL = "redis://127.0.0.1:6379/0"
MODES = ("off", "memory", "redis")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def mode_env(mode: str, data_dir: Path, port: int, prefix: str) -> dict[str, str]:
    env = {
        **os.environ,
        "CAPGATE_DATA_DIR": str(data_dir),
        "CAPGATE_PORT": str(port),
        "CAPGATE_LOG_LEVEL": "WARNING",
        "CAPGATE_RATE_LIMIT_ENABLED": "false" if mode == "off" else "true",
        "CAPGATE_RATE_LIMIT_PER_SECOND": "1000000000",
        "CAPGATE_DAILY_QUOTA": "1000000000",
    }
    env.pop("CAPGATE_REDIS_URL", None)
    if mode == "redis":
        env["CAPGATE_REDIS_URL"] = REDIS_URL
        env["CAPGATE_REDIS_KEY_PREFIX"] = prefix
    return env


def start_server(mode: str, base: Path, prefix: str) -> tuple[subprocess.Popen[bytes], int, str]:
    data_dir = base / mode
    port = free_port()
    env = mode_env(mode, data_dir, port, prefix)
    subprocess.run([CAPGATE, "db", "upgrade"], env=env, check=True, capture_output=True)
    subprocess.run([CAPGATE, "orgs", "create", "bench"], env=env, check=True, capture_output=True)
    created = subprocess.run(
        [CAPGATE, "keys", "create", "--org", "bench", "--name", "bench", "--json"],
        env=env,
        check=True,
        capture_output=True,
    )
    key = json.loads(created.stdout)["key"]
    process = subprocess.Popen([CAPGATE, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, port, key
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"capgate ({mode}) did not start on port {port}")


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def worker(port: int, request: bytes, until: float, latencies: list[float], errors: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < until:
            started = time.perf_counter()
            writer.write(request)
            status = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            if status != 200:
                errors.append(status)
    finally:
        writer.close()


async def measure(port: int, key: str, seconds: float, connections: int) -> dict[str, float]:
    request = (f"GET /capabilities HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nx-api-key: {key}\r\n\r\n").encode()
    warm: list[float] = []
    await asyncio.gather(*(worker(port, request, time.perf_counter() + 1.0, warm, []) for _ in range(connections)))
    latencies: list[float] = []
    errors: list[int] = []
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    until = wall_before + seconds
    await asyncio.gather(*(worker(port, request, until, latencies, errors) for _ in range(connections)))
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    if errors:
        raise RuntimeError(f"{len(errors)} non-200 responses, e.g. {errors[0]}")
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[int(len(ordered) * 0.99)] * 1000,
        "loadgen_cpu_fraction": cpu / wall,
    }


def summarise(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {
        "rps": round(statistics.median(r["rps"] for r in rounds), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 3),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 3),
        "loadgen_cpu_fraction": round(max(r["loadgen_cpu_fraction"] for r in rounds), 2),
        "rounds_rps": [round(r["rps"], 1) for r in rounds],  # type: ignore[dict-item]
    }


async def asgi_cost(mode: str, base: Path, prefix: str, requests: int = 3000) -> float:
    """Microseconds per request calling the ASGI app directly, one request at a time (no HTTP, no load generator).

    Stable on a busy machine; for Redis it includes one full round trip per request.
    """
    from asgi_lifespan import LifespanManager

    from auth import store
    from server.app import create_app
    from server.db import create_engine
    from server.migrate import upgrade_database
    from server.settings import Settings

    data_dir = base / f"asgi-{mode}-{secrets.token_hex(3)}"
    url = f"sqlite+aiosqlite:///{data_dir / 'capgate.db'}"
    engine = create_engine(url)
    await upgrade_database(engine)
    await engine.dispose()
    overrides: dict[str, Any] = {
        "data_dir": data_dir,
        "database_url": url,
        "rate_limit_enabled": mode != "off",
        "rate_limit_per_second": 10**9,
        "daily_quota": 10**9,
    }
    if mode == "redis":
        overrides.update(redis_url=REDIS_URL, redis_key_prefix=prefix)
    app = create_app(Settings(**overrides))
    async with LifespanManager(app):
        state = app.state.capgate
        async with state.sessions.begin() as session:
            organization = await store.create_organization(session, name="bench")
            created = await store.create_api_key(
                session, organization=organization, name="bench", scopes=["runtime"], hasher=state.hasher,
                created_by="bench",
            )  # fmt: skip
        scope = {
            "type": "http", "method": "GET", "path": "/capabilities", "raw_path": b"/capabilities",
            "query_string": b"", "headers": [(b"host", b"bench"), (b"x-api-key", created.secret.encode())],
            "client": ("127.0.0.1", 1), "server": ("bench", 80), "scheme": "http", "http_version": "1.1",
            "root_path": "",
        }  # fmt: skip
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        for _ in range(300):
            await app(dict(scope), receive, send)
        started = time.perf_counter()
        for _ in range(requests):
            await app(dict(scope), receive, send)
        elapsed = time.perf_counter() - started
    if set(statuses) != {200}:
        raise RuntimeError(f"unexpected statuses {set(statuses)}")
    return elapsed / requests * 1e6


async def cleanup_redis(prefix: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; modes alternate within each round")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "ratelimit.json")
    args = parser.parse_args()

    prefix = f"capgate-bench-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="capgate-bench-") as tmp:
        servers = {mode: start_server(mode, Path(tmp), prefix) for mode in MODES}
        try:
            measured: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
            for round_number in range(args.rounds):
                order = MODES if round_number % 2 == 0 else tuple(reversed(MODES))
                for mode in order:
                    _process, port, key = servers[mode]
                    result = asyncio.run(measure(port, key, args.seconds, args.connections))
                    measured[mode].append(result)
                    print(
                        f"round {round_number + 1} {mode:>6}: {result['rps']:8.1f} rps  p50 {result['p50_ms']:.2f} ms"
                    )
        finally:
            for process, _port, _key in servers.values():
                process.terminate()
                process.wait(timeout=10)
            asyncio.run(cleanup_redis(prefix))

        asgi = {
            mode: round(min(asyncio.run(asgi_cost(mode, Path(tmp), prefix)) for _ in range(3)), 1) for mode in MODES
        }
        print("ASGI direct, us per request:", asgi)
        asyncio.run(cleanup_redis(prefix))

    results = {mode: summarise(rounds) for mode, rounds in measured.items()}
    off = results["off"]
    overhead = {
        mode: {
            "rps_change_pct": round((results[mode]["rps"] / off["rps"] - 1) * 100, 1),
            "p50_added_ms": round(results[mode]["p50_ms"] - off["p50_ms"], 3),
            "per_request_added_us": round((1 / results[mode]["rps"] - 1 / off["rps"]) * 1e6, 1),
        }
        for mode in ("memory", "redis")
    }
    document: dict[str, Any] = {
        "benchmark": "GET /capabilities, rate limiting off vs in-process vs Redis",
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "server": "capgate serve (one uvicorn worker), SQLite, one key, limits far above the load",
        "load_generator": "raw asyncio sockets, keep-alive HTTP/1.1, same machine",
        "settings": {"seconds": args.seconds, "rounds": args.rounds, "connections": args.connections},
        "results": results,
        "overhead_vs_off": overhead,
        "asgi_direct_us_per_request": asgi,
        "asgi_direct_note": "one request at a time straight into the ASGI app (best of 3 x 3000); "
        "for redis this includes one full round trip to the local Redis",
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps({"results": results, "overhead_vs_off": overhead, "asgi_us": asgi}, indent=2))


if __name__ == "__main__":
    main()
