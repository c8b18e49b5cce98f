"""The tool registry, and which of its tools a principal may see."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from auth.principal import Principal
from tools.access import Verdict, grant_verdict, unknown_tool_verdict

ToolKind = Literal["memory", "integration"]
Handler = Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class ToolAccount:
    """A connected account a tool is available on (Copia's ``accounts[]`` entry)."""

    connected_account_id: str
    integration_id: str
    backend: str

    def public(self) -> dict[str, str]:
        return {
            "connectedAccountId": self.connected_account_id,
            "integrationId": self.integration_id,
            "backend": self.backend,
        }


class PassThroughInput(BaseModel):
    """The input of a tool whose schema belongs to someone else (an upstream): any object, checked there."""

    model_config = ConfigDict(extra="allow")


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
    accounts: tuple[ToolAccount, ...] = field(default=())
    schema_json: str | None = None
    """The input schema as JSON, for tools whose schema is not a pydantic model (upstream tools)."""
    parameters: dict[str, Any] = field(init=False, repr=False, compare=False)
    """The input's JSON Schema, built once with the tool (listing tools runs on every request); do not mutate."""

    def __post_init__(self) -> None:
        schema = json.loads(self.schema_json) if self.schema_json is not None else self.input_model.model_json_schema()
        object.__setattr__(self, "parameters", schema)


@dataclass(frozen=True, slots=True)
class SkippedPlugin:
    """A plugin entry point that did not load, kept for `capgate tools list`."""

    name: str
    origin: str
    reason: str


EMPTY: Mapping[str, Tool] = MappingProxyType({})
VISIBLE_CACHE_SIZE = 4096
# The tools an organization has beyond the registry's (its connected integrations), by name.
OrganizationTools = Callable[[str], Awaitable[Mapping[str, Tool]]]


class ToolRegistry:
    def __init__(self, tools: Iterable[Tool] = (), *, skipped: Iterable[SkippedPlugin] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._visible: dict[Hashable, tuple[Tool, ...]] = {}
        self.skipped = list(skipped)  # plugins that did not load, for `capgate tools list`
        for tool in tools:
            self.register(tool)

    def register(self, tool: Tool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"tool {tool.name!r} is registered twice")
        self._tools[tool.name] = tool
        self._visible.clear()

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    def all(self) -> list[Tool]:
        return list(self._tools.values())

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def visible(
        self, principal: Principal, disabled: Collection[str] = frozenset(), extra: Mapping[str, Tool] = EMPTY
    ) -> list[Tool]:
        """The tools the key may list and call: its scope, read-only limit and allowed-tool globs, minus the
        tools its organization disabled. ``extra``: the organization's own tools (upstream integrations),
        after the registry's; a registry tool wins a name clash."""
        # Every listing and /capabilities asks this with the same few grant sets: decide each set once. An
        # organization's own tools are rebuilt when its catalog refreshes, so those are decided each time.
        key = (principal.key_scopes, principal.allowed_tools, frozenset(disabled))
        cached = self._visible.get(key)
        if cached is None:
            if len(self._visible) >= VISIBLE_CACHE_SIZE:
                self._visible.clear()
            cached = self._visible[key] = tuple(
                tool for tool in self._tools.values() if self._may_use(principal, tool, disabled)
            )
        return [
            *cached,
            *(
                tool
                for tool in extra.values()
                if tool.name not in self._tools and self._may_use(principal, tool, disabled)
            ),
        ]

    def find(
        self,
        principal: Principal,
        name: str,
        disabled: Collection[str] = frozenset(),
        extra: Mapping[str, Tool] = EMPTY,
    ) -> Tool | None:
        """The tool if ``visible`` would list it, else None (unknown and hidden tools answer alike)."""
        tool = self._tools.get(name) or extra.get(name)
        return tool if tool is not None and self._may_use(principal, tool, disabled) else None

    def _may_use(self, principal: Principal, tool: Tool, disabled: Collection[str]) -> bool:
        return self.verdict(principal, tool, disabled).allowed

    def verdict(self, principal: Principal, tool: Tool, disabled: Collection[str] = ()) -> Verdict:
        return grant_verdict(
            tool_name=tool.name,
            tool_scope=tool.scope,
            tool_read_only=tool.read_only,
            key_scopes=principal.key_scopes,
            allowed_tools=principal.allowed_tools,
            disabled=disabled,
        )

    def decide(
        self,
        principal: Principal,
        tool_name: str,
        disabled: Collection[str] = (),
        upstream: Mapping[str, Tool] | None = None,
    ) -> Verdict:
        """The decision the runtime acts on (and ``keys explain`` reports) for calling ``tool_name``;
        ``upstream`` holds the organization's integration tools (a registered tool wins over one of them)."""
        tool = self._tools.get(tool_name) or (upstream or {}).get(tool_name)
        return unknown_tool_verdict() if tool is None else self.verdict(principal, tool, disabled)
