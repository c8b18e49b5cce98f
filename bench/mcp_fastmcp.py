"""The FastMCP comparator: what a user writes instead of capgate — FastMCP with a static bearer token.

``FastMCP`` (4.x) with ``StaticTokenVerifier`` (one token, no organizations, no hashing, nothing
persisted) and one tool doing capgate's ``example_echo`` work (the input validated by a pydantic
model, text + structured answer), served with ``http_app()`` defaults (Streamable HTTP: legacy
sessions and the stateless 2026-07-28 protocol, as the SDK's session manager serves them) under
one uvicorn worker:

    BENCH_FASTMCP_TOKEN=TOKEN python -m bench.mcp_fastmcp --port 8002   # clients send Authorization: Bearer TOKEN
"""

from __future__ import annotations

import argparse
import logging
import os
from typing import Annotated, Any

import uvicorn
from fastmcp import FastMCP
from fastmcp.server.auth.providers.jwt import StaticTokenVerifier
from mcp_types import ToolAnnotations
from pydantic import Field


def build_app(token: str) -> Any:
    verifier = StaticTokenVerifier(tokens={token: {"client_id": "bench", "scopes": []}})
    server = FastMCP("fastmcp-bench", auth=verifier)

    @server.tool(
        name="example_echo",
        description="Send the text back.",
        annotations=ToolAnnotations(readOnlyHint=True, idempotentHint=True, destructiveHint=False),
    )
    def example_echo(text: Annotated[str, Field(max_length=10_000)]) -> dict[str, str]:
        return {"text": text}

    return server.http_app(path="/mcp")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.getLogger("fastmcp").setLevel(logging.WARNING)
    token = os.environ["BENCH_FASTMCP_TOKEN"]  # not on the command line, where `ps` shows it
    uvicorn.run(build_app(token), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
