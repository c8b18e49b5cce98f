"""MCP ``tools/call`` over Streamable HTTP on the raw-socket load generator of ``bench.loadgen``.

Keep-alive HTTP/1.1 connections, each sending its next request as soon as the previous answer
is complete (closed loop). Answers are read by ``bench.loadgen.read_answer`` (Content-Length or
chunked), so both the stateless protocol's JSON answers and a legacy session's SSE answers are
handled; every answer must be a 200 whose body carries a successful tool result.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Literal

from bench.loadgen import Answer, latency_figures, read_answer

Mode = Literal["stateless", "legacy"]
STATELESS_VERSION = "2026-07-28"
LEGACY_VERSION = "2025-11-25"
TOOL = "example_echo"
ARGUMENTS = {"text": "hello from the benchmark"}
OK_MARKER = b'"isError":false'


class BadAnswer(RuntimeError):
    pass


@dataclass
class Target:
    port: int
    path: str = "/mcp"
    headers: dict[str, str] = field(default_factory=dict)  # e.g. the API key
    tool: str = TOOL


def request_bytes(target: Target, body: bytes, extra: dict[str, str]) -> bytes:
    headers = {
        "Host": f"127.0.0.1:{target.port}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
        **target.headers,
        **extra,
        "Content-Length": str(len(body)),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {target.path} HTTP/1.1\r\n{head}\r\n".encode() + body


def stateless_call(target: Target, request_id: int) -> bytes:
    meta = {
        "io.modelcontextprotocol/protocolVersion": STATELESS_VERSION,
        "io.modelcontextprotocol/clientInfo": {"name": "mcp-bench", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {"jsonrpc": "2.0", "id": request_id, "method": "tools/call"}
    body["params"] = {"name": target.tool, "arguments": ARGUMENTS, "_meta": meta}
    extra = {"MCP-Protocol-Version": STATELESS_VERSION, "Mcp-Method": "tools/call", "Mcp-Name": target.tool}
    return request_bytes(target, json.dumps(body, separators=(",", ":")).encode(), extra)


def legacy_call(target: Target, session_id: str, request_id: int) -> bytes:
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": target.tool, "arguments": ARGUMENTS},
    }
    extra = {"Mcp-Session-Id": session_id, "MCP-Protocol-Version": LEGACY_VERSION}
    return request_bytes(target, json.dumps(body, separators=(",", ":")).encode(), extra)


async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> Answer:
    writer.write(request)
    return await read_answer(reader)


async def open_legacy_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target) -> str:
    params = {
        "protocolVersion": LEGACY_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "mcp-bench", "version": "0"},
    }
    init = json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}).encode()
    answer = await exchange(reader, writer, request_bytes(target, init, {}))
    session_id = answer.headers.get(b"mcp-session-id")
    if answer.status != 200 or session_id is None:
        raise BadAnswer(f"initialize answered {answer.status}: {answer.body[:300]!r}")
    notified = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode()
    extra = {"Mcp-Session-Id": session_id.decode(), "MCP-Protocol-Version": LEGACY_VERSION}
    answer = await exchange(reader, writer, request_bytes(target, notified, extra))
    if answer.status != 202:
        raise BadAnswer(f"notifications/initialized answered {answer.status}: {answer.body[:300]!r}")
    return session_id.decode()


async def close_legacy_session(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: Target, session_id: str
) -> None:
    headers = {"Host": f"127.0.0.1:{target.port}", **target.headers, "Mcp-Session-Id": session_id}
    headers["MCP-Protocol-Version"] = LEGACY_VERSION
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    await exchange(reader, writer, f"DELETE {target.path} HTTP/1.1\r\n{head}\r\n".encode())


async def connection(target: Target, mode: Mode, until: float, latencies: list[float], failures: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", target.port)
    session_id = ""
    try:
        if mode == "legacy":
            session_id = await open_legacy_session(reader, writer, target)
        request_id = 0
        while time.perf_counter() < until:
            request_id += 1
            if mode == "legacy":
                request = legacy_call(target, session_id, request_id)
            else:
                request = stateless_call(target, request_id)
            started = time.perf_counter()
            answer = await exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
            if answer.status != 200 or OK_MARKER not in answer.body:
                failures.append(f"{answer.status}: {answer.body[:300]!r}")
        if session_id:
            await close_legacy_session(reader, writer, target, session_id)
    finally:
        writer.close()


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process (Linux /proc), to report a server's CPU cost per request."""
    import os

    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def drive(
    target: Target, mode: Mode, *, seconds: float, connections: int, server_pid: int | None = None
) -> dict[str, float]:
    """Runs ``connections`` closed loops for ``seconds``; returns throughput, latency and CPU figures."""
    latencies: list[float] = []
    failures: list[str] = []
    server_cpu = process_cpu_seconds(server_pid) if server_pid else 0.0
    cpu_before, wall_before = time.process_time(), time.perf_counter()
    until = wall_before + seconds
    await asyncio.gather(*(connection(target, mode, until, latencies, failures) for _ in range(connections)))
    wall = time.perf_counter() - wall_before
    cpu = time.process_time() - cpu_before
    if failures:
        raise BadAnswer(f"{len(failures)} failed calls of {len(latencies)}, e.g. {failures[0]}")
    result = latency_figures(latencies, wall, cpu)
    if server_pid:
        used = process_cpu_seconds(server_pid) - server_cpu
        result["server_cpu_ms_per_call"] = used * 1000 / max(1, len(latencies))
        result["server_cpu_fraction"] = used / wall
    return result
