"""The tool registry, and which of its tools a principal may see."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from auth.principal import Principal
from tools.access import Verdict, grant_verdict, unknown_tool_verdict

ToolKind = Literal["memory", "integration"]
Handler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str
    input_model: type[BaseModel]
    handler: Handler
    kind: ToolKind = "integration"
    read_only: bool = False
    idempotent: bool = False
    destructive: bool = False
    scope: str = "runtime"
    accounts: tuple[str, ...] = field(default=())

    @property
    def parameters(self) -> dict[str, Any]:
        """The input's JSON Schema, built once per model (listing tools runs on every request); do not mutate."""
        return _json_schema(self.input_model)


@functools.cache
def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def all(self) -> list[Tool]:
        return list(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def visible_to(self, principal: Principal) -> list[Tool]:
        """The tools the key may list and call: its scope, read-only limit and allowed-tool globs."""
        return [tool for tool in self._tools.values() if self._grants(principal, tool)]

    def grants(self, principal: Principal, tool: Tool) -> bool:
        return self._grants(principal, tool)

    def _grants(self, principal: Principal, tool: Tool) -> bool:
        return self.verdict(principal, tool).allowed

    def verdict(self, principal: Principal, tool: Tool, disabled: Collection[str] = ()) -> Verdict:
        return grant_verdict(
            tool_name=tool.name,
            tool_scope=tool.scope,
            tool_read_only=tool.read_only,
            key_scopes=principal.key_scopes,
            allowed_tools=principal.allowed_tools,
            disabled=disabled,
        )

    def decide(self, principal: Principal, tool_name: str, disabled: Collection[str] = ()) -> Verdict:
        """The decision the runtime acts on (and ``keys explain`` reports) for calling ``tool_name``."""
        tool = self._tools.get(tool_name)
        return unknown_tool_verdict() if tool is None else self.verdict(principal, tool, disabled)
