"""Raw-socket clients of capgate's event streams, for ``bench.streams``: thousands in one process.

Each open stream is one keep-alive HTTP/1.1 connection and one reader task that stamps every chunk
with the wall clock (``time.time()``: the server's event timestamps use the same clock, one machine)
before looking inside it, so parsing never delays the stamp. Two kinds:

- ``open_execution_stream``: ``GET /api/runtime/executions/{id}/events`` (SSE); every ``progress``
  event carries its ``createdAt``: its delivery latency is receipt − createdAt.
- ``open_mcp_stream``: a legacy MCP session (``initialize``, ``notifications/initialized``) and its
  standalone ``GET /mcp`` SSE stream; a ``notifications/tools/list_changed`` is stamped on receipt
  and compared with the moment the benchmark triggered it.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from datetime import datetime

from bench.mcp_loadgen import LEGACY_VERSION, Target, open_legacy_session

CREATED_AT = re.compile(rb'"type":"progress","createdAt":"([^"]+)"')
LIST_CHANGED = b"notifications/tools/list_changed"


class StreamRefused(RuntimeError):
    pass


@dataclass
class Stream:
    kind: str  # "execution" or "mcp"
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    received: list[tuple[float, bytes]] = field(default_factory=list)  # (wall-clock receipt, chunk)
    closed: bool = False
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                self.received.append((time.time(), chunk))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.closed = True

    def take(self) -> list[tuple[float, bytes]]:
        """The chunks received since the last call."""
        chunks, self.received = self.received, []
        return chunks

    def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
        self.writer.close()


def _request(method: str, path: str, port: int, headers: dict[str, str]) -> bytes:
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{lines}\r\n".encode()


async def _stream_head(reader: asyncio.StreamReader, what: str) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    if head[9:12] != b"200":
        raise StreamRefused(f"{what} answered {head[:200]!r} {await reader.read(300)!r}")


async def open_execution_stream(port: int, key: str, execution_id: str, after: int = 0) -> Stream:
    """``after``: the Last-Event-ID sent, so the stream does not first replay the whole history."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers = {"x-api-key": key, "Accept": "text/event-stream", "Last-Event-ID": str(after)}
    writer.write(_request("GET", f"/api/runtime/executions/{execution_id}/events", port, headers))
    try:
        await _stream_head(reader, "execution events")
    except BaseException:
        writer.close()
        raise
    stream = Stream("execution", reader, writer)
    stream.start()
    return stream


async def open_mcp_stream(port: int, key: str) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        session_id = await open_legacy_session(reader, writer, Target(port=port, headers={"x-api-key": key}))
        headers = {
            "x-api-key": key,
            "Accept": "text/event-stream",
            "Mcp-Session-Id": session_id,
            "MCP-Protocol-Version": LEGACY_VERSION,
        }
        writer.write(_request("GET", "/mcp", port, headers))
        await _stream_head(reader, "MCP GET stream")
    except BaseException:
        writer.close()
        raise
    stream = Stream("mcp", reader, writer)
    stream.start()
    return stream


def progress_latencies(chunks: list[tuple[float, bytes]], since: float) -> list[float]:
    """Receipt − createdAt (seconds) of each progress event created at or after ``since``."""
    latencies = []
    for received, chunk in chunks:
        for match in CREATED_AT.finditer(chunk):
            created = datetime.fromisoformat(match.group(1).decode().replace("Z", "+00:00")).timestamp()
            if created >= since:
                latencies.append(received - created)
    return latencies


def list_changed_receipts(chunks: list[tuple[float, bytes]]) -> list[float]:
    """Receipt times of the ``tools/list_changed`` notifications in these chunks."""
    return [received for received, chunk in chunks for _ in range(chunk.count(LIST_CHANGED))]
