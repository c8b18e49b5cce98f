"""Example capgate tools, registered through the ``capgate.tools`` entry-point group."""

from __future__ import annotations

from typing import Any

import anyio
from pydantic import BaseModel, Field

from tools.context import ToolContext, ToolError
from tools.registry import Tool


class EchoInput(BaseModel):
    text: str = Field(max_length=10_000, description="Text to send back")


class CountdownInput(BaseModel):
    steps: int = Field(ge=0, le=10_000, description="How many steps to count")
    interval_ms: int = Field(default=100, ge=0, le=60_000, description="Pause before each step, in milliseconds")


class FailInput(BaseModel):
    message: str = Field(default="example failure", max_length=1000, description="Message of the failure")


async def echo(_ctx: ToolContext, args: EchoInput) -> dict[str, Any]:
    return {"text": args.text}


async def countdown(ctx: ToolContext, args: CountdownInput) -> dict[str, Any]:
    for step in range(1, args.steps + 1):
        await anyio.sleep(args.interval_ms / 1000)
        await ctx.progress(step, args.steps, f"step {step} of {args.steps}")
    return {"steps": args.steps, "done": True}


async def fail(_ctx: ToolContext, args: FailInput) -> None:
    raise ToolError(args.message)


def tools() -> list[Tool]:
    return [
        Tool("example_echo", "Send the text back.", EchoInput, echo, read_only=True, idempotent=True),
        Tool(
            "example_countdown",
            "Count down for steps × interval_ms milliseconds, reporting progress after each step.",
            CountdownInput,
            countdown,
            read_only=True,
            idempotent=True,
        ),
        Tool("example_fail", "Always fails with the given message.", FailInput, fail, read_only=True),
    ]
