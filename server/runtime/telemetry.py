"""What the runtime reports while it works, as protocols: server/observability implements them, and the
runtime stays free of imports from the rest of server/ (the layout test holds it to auth/ and tools/)."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Protocol

from auth.principal import Principal


class DecisionObserver(Protocol):
    """One request's decision recorder (server/observability/observed.py:ObservedRequest)."""

    def decide(
        self, *, allowed: bool, reason: str, rule: str, route: str, tool: str | None = None, principal: Principal | None
    ) -> None: ...


class Spans(Protocol):
    def child(self, name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]: ...


class RuntimeTelemetry(Protocol):
    """Tracing spans around the tool and the record write, and the executions counter."""

    @property
    def spans(self) -> Spans: ...

    def tool_executed(self, tool: str, status: str) -> None: ...


class _NoSpans:
    def child(self, name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
        return nullcontext(None)


class NoTelemetry:
    """For runtimes built without observability (tests, tools run from the CLI)."""

    spans: Spans = _NoSpans()

    def tool_executed(self, tool: str, status: str) -> None:
        return None
