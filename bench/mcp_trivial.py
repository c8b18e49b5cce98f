"""A trivial raw-asyncio HTTP/1.1 server answering like an MCP endpoint, to measure the load generator's ceiling.

It parses just enough (head, Content-Length body) and sends canned answers of the same
shape as the real ones: JSON for the stateless protocol, a chunked SSE event on a legacy
session (``initialize`` gets a session id, the ``initialized`` notification a 202).

    python -m bench.mcp_trivial --port 8002
"""

from __future__ import annotations

import argparse
import asyncio

RESULT = (
    b'{"jsonrpc":"2.0","id":1,"result":{"content":[{"text":"{\\"text\\": \\"hello from the benchmark\\"}",'
    b'"type":"text"}],"isError":false,"structuredContent":{"text":"hello from the benchmark"}}}'
)
JSON_ANSWER = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
    len(RESULT),
    RESULT,
)
SSE_EVENT = b"event: message\r\ndata: " + RESULT + b"\r\n\r\n"
SSE_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nmcp-session-id: trivial\r\n"
    b"transfer-encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(SSE_EVENT), SSE_EVENT)
)
ACCEPTED = b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\n\r\n"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length)
            if b"notifications/initialized" in body:
                writer.write(ACCEPTED)
            elif b"mcp-protocol-version: 2026" in head.lower():
                writer.write(JSON_ANSWER)
            else:
                writer.write(SSE_ANSWER)
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
