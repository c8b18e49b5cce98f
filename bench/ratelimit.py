"""Benchmark: GET /capabilities with rate limiting off, in-process and Redis, in one run.

Starts one real `capgate serve` (uvicorn) process per mode, each with its own data
directory and a key whose limits are far above the load (so the limiter's cost is
measured, not its refusals), then drives them one after another, round after round,
with a load generator of raw asyncio sockets (keep-alive HTTP/1.1, no client library:
httpx tops out far below the server here). The generator's own CPU use is recorded so a
reader can see it was not the bottleneck. Results go to bench/results/ratelimit.json.

    .venv/bin/python -m bench ratelimit [--seconds 5] [--rounds 3] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import loadgen, servers

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = "redis://127.0.0.1:6379/0"
MODES = ("off", "memory", "redis")


def start_server(mode: str, base: Path, prefix: str) -> servers.Server:
    overrides = {"CAPGATE_RATE_LIMIT_ENABLED": "false" if mode == "off" else "true"}
    if mode == "redis":
        overrides.update(CAPGATE_REDIS_URL=REDIS_URL, CAPGATE_REDIS_KEY_PREFIX=prefix)
    return servers.start_capgate(base / mode, **overrides)


async def asgi_cost(mode: str, base: Path, prefix: str, requests: int = 3000) -> float:
    """Microseconds per request calling the ASGI app directly, one request at a time (no HTTP, no load generator).

    Stable on a busy machine; for Redis it includes one full round trip per request.
    """
    from asgi_lifespan import LifespanManager

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
        (secret,) = await servers.create_org_and_keys(state.sessions, state.hasher)
        scope = {
            "type": "http", "method": "GET", "path": "/capabilities", "raw_path": b"/capabilities",
            "query_string": b"", "headers": [(b"host", b"bench"), (b"x-api-key", secret.encode())],
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


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per mode and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; modes alternate within each round")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "ratelimit.json")
    args = parser.parse_args(argv)

    prefix = f"capgate-bench-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix="capgate-bench-") as tmp:
        running = {mode: start_server(mode, Path(tmp), prefix) for mode in MODES}
        try:
            measured: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
            for round_number in range(args.rounds):
                order = MODES if round_number % 2 == 0 else tuple(reversed(MODES))
                for mode in order:
                    server = running[mode]
                    request = loadgen.get("/capabilities", server.port, [("x-api-key", server.key)])
                    result = asyncio.run(loadgen.measure(server.port, request, args.seconds, args.connections))
                    measured[mode].append(result)
                    print(
                        f"round {round_number + 1} {mode:>6}: {result['rps']:8.1f} rps  p50 {result['p50_ms']:.2f} ms"
                    )
        finally:
            for server in running.values():
                server.stop()
            asyncio.run(cleanup_redis(prefix))

        asgi = {
            mode: round(min(asyncio.run(asgi_cost(mode, Path(tmp), prefix)) for _ in range(3)), 1) for mode in MODES
        }
        print("ASGI direct, us per request:", asgi)
        asyncio.run(cleanup_redis(prefix))

    results = {mode: loadgen.summarise(rounds) for mode, rounds in measured.items()}
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
