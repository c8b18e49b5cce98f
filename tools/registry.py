"""The tool registry, and which of its tools a principal may see."""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from auth.principal import Principal

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
    parameters: dict[str, Any] = field(init=False, repr=False, compare=False)
    """The input's JSON Schema, built once with the tool (listing tools runs on every request); do not mutate."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "parameters", self.input_model.model_json_schema())


def allowed_by_patterns(name: str, patterns: Iterable[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


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

    def visible(self, principal: Principal, disabled: Collection[str] = frozenset()) -> list[Tool]:
        """The tools the key may list and call: its scope, read-only limit and allowed-tool globs,
        minus the tools its organization disabled."""
        return [tool for tool in self._tools.values() if self._may_use(principal, tool, disabled)]

    def find(self, principal: Principal, name: str, disabled: Collection[str] = frozenset()) -> Tool | None:
        """The tool if ``visible`` would list it, else None (unknown and hidden tools answer alike)."""
        tool = self._tools.get(name)
        return tool if tool is not None and self._may_use(principal, tool, disabled) else None

    @staticmethod
    def _may_use(principal: Principal, tool: Tool, disabled: Collection[str]) -> bool:
        if not principal.has_scope(tool.scope):
            return False
        if principal.read_only and not tool.read_only:
            return False
        return allowed_by_patterns(tool.name, principal.allowed_tools) and tool.name not in disabled
