"""``Server-Timing``: what capgate's own work cost a request, in its response (``auth``, ``ratelimit``, ``record``,
``total``), so a user sees capgate's share next to their tool's.

AuthMiddleware starts one ``ServerTiming`` per authenticated request and writes the header when the
response starts; the steps add their durations to it. Code that never sees the ASGI scope (the
runtime's execution-record writes) finds it through a context variable, which the request's task
and the tasks it starts share. ``total`` is the time from authentication until the response
started: for an event stream that is its first byte, not its end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

HEADER = b"server-timing"


@dataclass(slots=True)
class ServerTiming:
    started: float = field(default_factory=time.perf_counter)
    auth: float = 0.0
    ratelimit: float = 0.0
    record: float = 0.0

    def header(self) -> tuple[bytes, bytes]:
        total = time.perf_counter() - self.started
        value = (
            f"auth;dur={self.auth * 1000:.2f}, ratelimit;dur={self.ratelimit * 1000:.2f}, "
            f"record;dur={self.record * 1000:.2f}, total;dur={total * 1000:.2f}"
        )
        return HEADER, value.encode("ascii")


current_timing: ContextVar[ServerTiming | None] = ContextVar("capgate_server_timing", default=None)


@contextmanager
def timing_record() -> Iterator[None]:
    """Counts the enclosed execution-record write into the current request's ``record`` time."""
    timing = current_timing.get()
    if timing is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        timing.record += time.perf_counter() - started
