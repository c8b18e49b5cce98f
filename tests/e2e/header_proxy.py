"""A byte-level HTTP/1.1 proxy that adds capgate's API-key header to each request, for clients that cannot.

The MCP conformance suite's server runner sends no credentials (it has no header or auth option), so
tests/e2e/test_conformance.py puts this in front of capgate. It rewrites nothing else: every request header
goes through byte for byte (the DNS-rebinding scenario sends foreign Host/Origin values on purpose, and the
header-validation scenario sends values with surrounding whitespace, which an HTTP client library would
refuse to re-send), then the body, and the response is relayed as capgate writes it, so SSE streams stay
streams. Each request gets its own upstream connection with ``Connection: close``; when the client goes away
the upstream connection is closed too.

Run: CAPGATE_PROXY_UPSTREAM_PORT=PORT CAPGATE_PROXY_KEY=... python -m tests.e2e.header_proxy LISTEN_PORT
(the key comes from the environment, never the command line).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

DROPPED = (b"x-api-key:", b"connection:", b"keep-alive:", b"proxy-connection:")


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while chunk := await reader.read(65536):
        writer.write(chunk)
        await writer.drain()


async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
    upstream_writer = None
    try:
        head = await client_reader.readuntil(b"\r\n\r\n")
        request_line, *lines = head[:-4].split(b"\r\n")
        kept = [line for line in lines if not line.lower().startswith(DROPPED)]
        length = next((int(line.split(b":", 1)[1]) for line in lines if line.lower().startswith(b"content-length:")), 0)
        if any(line.lower().startswith(b"transfer-encoding:") for line in lines):
            client_writer.write(b"HTTP/1.1 411 Length Required\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            return
        body = await client_reader.readexactly(length)
        key = os.environ["CAPGATE_PROXY_KEY"].encode()
        head = b"\r\n".join([request_line, *kept, b"x-api-key: " + key, b"Connection: close"]) + b"\r\n\r\n"
        upstream_reader, upstream_writer = await asyncio.open_connection(
            "127.0.0.1", int(os.environ["CAPGATE_PROXY_UPSTREAM_PORT"])
        )
        upstream_writer.write(head + body)
        await upstream_writer.drain()
        relay = asyncio.ensure_future(pipe(upstream_reader, client_writer))
        hang_up = asyncio.ensure_future(client_reader.read())  # the client closing its side ends the exchange
        await asyncio.wait({relay, hang_up}, return_when=asyncio.FIRST_COMPLETED)
        relay.cancel()
        hang_up.cancel()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        for writer in (upstream_writer, client_writer):
            if writer is not None:
                writer.close()
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()


async def serve(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    if not os.environ.get("CAPGATE_PROXY_UPSTREAM_PORT") or not os.environ.get("CAPGATE_PROXY_KEY"):
        sys.exit("header_proxy: set CAPGATE_PROXY_UPSTREAM_PORT and CAPGATE_PROXY_KEY")
    asyncio.run(serve(int(sys.argv[1])))


if __name__ == "__main__":
    main()
