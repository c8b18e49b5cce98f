"""Executions running in this process, with every event so far, for streams to follow live."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio

TERMINAL_EVENTS = frozenset({"completed", "failed", "interrupted"})


@dataclass(frozen=True, slots=True)
class EventRecord:
    seq: int
    type: str
    data: dict[str, Any]
    created_at: datetime

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS


@dataclass(slots=True)
class LiveExecution:
    execution_id: str
    organization_id: str
    events: list[EventRecord] = field(default_factory=list)
    finished: anyio.Event = field(default_factory=anyio.Event)
    _changed: anyio.Event = field(default_factory=anyio.Event)

    def add(self, event: EventRecord) -> None:
        self.events.append(event)
        self._changed.set()
        self._changed = anyio.Event()

    def after(self, seq: int) -> list[EventRecord]:
        return [event for event in self.events if event.seq > seq]

    async def wait_for_events_after(self, seq: int, timeout: float) -> None:
        """Returns at once when an event after ``seq`` is already here (it may have come while the caller was busy)."""
        if self.events and self.events[-1].seq > seq:
            return
        with anyio.move_on_after(timeout):
            await self._changed.wait()


class LiveExecutions:
    def __init__(self) -> None:
        self._running: dict[str, LiveExecution] = {}
        self._elsewhere: dict[str, anyio.Event] = {}

    async def wait_elsewhere(self, execution_id: str, timeout: float) -> None:
        """Waits until an execution running in another process wrote events (a change notification
        says so), or ``timeout`` — the poll that catches a lost notification."""
        changed = self._elsewhere.setdefault(execution_id, anyio.Event())
        try:
            with anyio.move_on_after(timeout):
                await changed.wait()
        finally:
            if self._elsewhere.get(execution_id) is changed:
                del self._elsewhere[execution_id]

    def changed_elsewhere(self, execution_id: str) -> None:
        changed = self._elsewhere.pop(execution_id, None)
        if changed is not None:
            changed.set()

    def open(self, execution_id: str, organization_id: str) -> LiveExecution:
        live = LiveExecution(execution_id, organization_id)
        self._running[execution_id] = live
        return live

    def get(self, execution_id: str) -> LiveExecution | None:
        return self._running.get(execution_id)

    def close(self, execution_id: str) -> None:
        live = self._running.pop(execution_id, None)
        if live is not None:
            live.finished.set()

    def __len__(self) -> int:
        return len(self._running)
