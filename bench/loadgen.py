"""A load generator of raw asyncio sockets: keep-alive HTTP/1.1, N connections, fixed duration.

No client library: httpx tops out far below the servers measured here. The generator's
own CPU use is recorded with every measurement (bench.mcp_loadgen drives MCP calls on the same
reader and figures), and `ceiling()` measures how many
requests per second it can drive at all, against a trivial raw asyncio HTTP server in
another process, so a reader can see it was not the bottleneck.

    python -m bench.loadgen --serve PORT BODY_BYTES   # the trivial server, used by ceiling()
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

Check = Callable[[int, bytes], bool]


def status_is_200(status: int, _body: bytes) -> bool:
    return status == 200


def get(path: str, port: int, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{lines}\r\n".encode()


def post_json(path: str, port: int, body: bytes, headers: Sequence[tuple[str, str]] = ()) -> bytes:
    all_headers = [*headers, ("content-type", "application/json"), ("content-length", str(len(body)))]
    return get(path, port, all_headers).replace(b"GET ", b"POST ", 1) + body


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0][9:12])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding") == b"chunked":
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers are sent
                break
            parts.append((await reader.readexactly(size + 2))[:-2])
        body = b"".join(parts)
    else:
        body = await reader.readexactly(int(headers.get(b"content-length", b"0")))
    return Answer(status, headers, body)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    answer = await read_answer(reader)
    return answer.status, answer.body


async def exchange(port: int, request: bytes) -> tuple[int, bytes]:
    """One request on a fresh connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        return await read_response(reader)
    finally:
        writer.close()


async def _worker(
    port: int,
    requests: Sequence[bytes],
    offset: int,
    until: float,
    latencies: list[float],
    failures: list[str],
    check: Check,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    index = offset
    try:
        while time.perf_counter() < until:
            request = requests[index % len(requests)]
            index += 1
            started = time.perf_counter()
            writer.write(request)
            status, body = await read_response(reader)
            latencies.append(time.perf_counter() - started)
            if not check(status, body):
                failures.append(f"{status} {body[:120]!r}")
    finally:
        writer.close()


async def _drive(
    port: int, requests: Sequence[bytes], seconds: float, connections: int, check: Check
) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    failures: list[str] = []
    until = time.perf_counter() + seconds
    stride = max(1, len(requests) // connections)
    await asyncio.gather(
        *(_worker(port, requests, n * stride, until, latencies, failures, check) for n in range(connections))
    )
    return latencies, failures


async def measure(
    port: int,
    requests: bytes | Sequence[bytes],
    seconds: float,
    connections: int,
    *,
    check: Check = status_is_200,
    warmup: float = 1.0,
) -> dict[str, float]:
    """Requests/s and latency percentiles; raises if any response fails `check`.

    Several requests are sent in turn (each connection starting at its own offset), so
    a flood can present a different key on every request.
    """
    pool = [requests] if isinstance(requests, bytes) else list(requests)
    if warmup > 0:
        await _drive(port, pool, warmup, connections, lambda _s, _b: True)
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    latencies, failures = await _drive(port, pool, seconds, connections, check)
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    if failures:
        raise RuntimeError(f"{len(failures)} failed responses, e.g. {failures[0]}")
    return latency_figures(latencies, wall, cpu)


def latency_figures(latencies: Sequence[float], wall: float, cpu: float) -> dict[str, float]:
    """Requests/s, latency percentiles and the generator's own CPU share of one measurement."""
    ordered = sorted(latencies) or [0.0]  # none answered (a starved machine): zeros, not an IndexError
    return {
        "requests": len(latencies),
        "rps": len(latencies) / wall,
        "p50_ms": ordered[len(ordered) // 2] * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        "loadgen_cpu_fraction": cpu / wall,
    }


def summarise(rounds: list[dict[str, float]]) -> dict[str, Any]:
    """Medians over rounds (the generator's CPU share: the worst round)."""
    return {
        "rps": round(statistics.median(r["rps"] for r in rounds), 1),
        "p50_ms": round(statistics.median(r["p50_ms"] for r in rounds), 3),
        "p99_ms": round(statistics.median(r["p99_ms"] for r in rounds), 3),
        "loadgen_cpu_fraction": round(max(r["loadgen_cpu_fraction"] for r in rounds), 2),
        "rounds_rps": [round(r["rps"], 1) for r in rounds],
    }


def ceiling(seconds: float, connections: int, body_bytes: int = 1024) -> dict[str, Any]:
    """The generator's own limit: the same measurement against a trivial raw asyncio server."""
    from bench.servers import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.loadgen", "--serve", str(port), str(body_bytes)])
    try:
        wait_for_port(port, process)
        result = asyncio.run(measure(port, get("/", port), seconds, connections))
    finally:
        process.terminate()
        process.wait(timeout=10)
    rounded = {key: round(value, 3) for key, value in result.items()}
    return {"server": f"raw asyncio HTTP/1.1, {body_bytes}-byte body, own process", **rounded}


async def _serve_trivial(port: int, body_bytes: int) -> None:
    response = (
        f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {body_bytes}\r\n\r\n".encode()
        + b"x" * body_bytes
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(response)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        asyncio.run(_serve_trivial(int(sys.argv[2]), int(sys.argv[3])))
    else:
        sys.exit(__doc__)
