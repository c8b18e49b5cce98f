"""`capgate serve` for the real-client tests, with stand-in memory tools while the real ones are not built in.

Runs the real CLI's serve command (migrations, logging, uvicorn options); it only adds `memory_write` and
`memory_read` stand-ins to the app's registry when the registry has no tools of those names, so the
clients' list-and-call paths are exercised now and the real memory tools take over as soon as they exist.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel, Field
from starlette.applications import Starlette

import server.app
from server.cli import app as cli
from tools.registry import Tool, ToolRegistry


class WriteInput(BaseModel):
    path: str = Field(description="document path, e.g. /notes/today.md")
    content: str


class ReadInput(BaseModel):
    path: str


def stand_in_memory_tools() -> list[Tool]:
    # One process serves one test organization at a time, so a plain dict is enough for a stand-in.
    documents: dict[str, str] = {}

    async def write(_ctx: Any, args: WriteInput) -> dict[str, Any]:
        documents[args.path] = args.content
        return {"path": args.path, "size": len(args.content.encode())}

    async def read(_ctx: Any, args: ReadInput) -> dict[str, Any]:
        return {"path": args.path, "content": documents.get(args.path, "")}

    return [
        Tool("memory_write", "Write a memory document", WriteInput, write, kind="memory", destructive=True),
        Tool("memory_read", "Read a memory document", ReadInput, read, kind="memory", read_only=True),
    ]


def register_missing(registry: ToolRegistry, tools: list[Tool]) -> None:
    for tool in tools:
        try:
            registry.register(tool)
        except ValueError:  # the real tool of that name is built in: it wins
            continue


def main() -> None:
    create_app = server.app.create_app

    def create_app_with_memory(*args: Any, **kwargs: Any) -> Starlette:
        application = create_app(*args, **kwargs)
        register_missing(application.state.capgate.tools, stand_in_memory_tools())
        return application

    server.app.create_app = create_app_with_memory  # type: ignore[assignment]
    cli(["serve", *sys.argv[1:]])


if __name__ == "__main__":
    main()
