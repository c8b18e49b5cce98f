"""Client sessions to upstreams, one per connected account: opened lazily, reused, closed when idle or when
the account changes, behind a circuit breaker; stdio upstreams are bounded in number."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from server.integrations.breaker import CircuitBreaker
from server.integrations.destinations import DestinationRules
from server.integrations.upstream import (
    TRANSPORT_ERRORS,
    LogFn,
    UpstreamHTTPStatus,
    UpstreamSession,
    UpstreamTarget,
    upstream_message,
)

logger = logging.getLogger(__name__)
HealthFn = Callable[[str, str, str | None], Awaitable[None]]
TRANSPORT_CODES = (types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT)


def first_leaf(error: BaseException) -> BaseException:
    """The SDK's task groups wrap a transport failure in exception groups; the first leaf says what it was."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


class UpstreamUnavailable(Exception):
    """The upstream could not be reached or answered with a protocol error; the message is for the caller."""

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class UpstreamPool:
    def __init__(
        self,
        *,
        breaker: CircuitBreaker,
        idle_seconds: float,
        max_stdio: int,
        backoff_seconds: float,
        on_health: HealthFn,
        on_tools_changed: Callable[[str, str], None],
        destinations: DestinationRules | None,
    ) -> None:
        self.breaker = breaker
        self.destinations = destinations
        self.idle_seconds = idle_seconds
        self.max_stdio = max_stdio
        self.backoff_seconds = backoff_seconds
        self._on_health = on_health
        self._on_tools_changed = on_tools_changed
        self._sessions: dict[str, UpstreamSession] = {}
        self._opening: dict[str, anyio.Lock] = {}
        self._last_error: dict[str, str] = {}
        self._tasks: anyio.abc.TaskGroup | None = None

    async def run(self) -> None:
        """The pool's lifetime (the app's lifespan): sessions live in its task group; idle ones are closed."""
        async with self.running():
            while True:
                await anyio.sleep(min(self.idle_seconds, 5.0))
                self.close_idle()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Sessions can be opened inside this block; leaving it closes them all (stdio processes stop)."""
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                try:
                    yield
                finally:
                    self.close_all()
        finally:
            self._tasks = None

    def close_idle(self) -> None:
        now = anyio.current_time()
        for account_id, session in list(self._sessions.items()):
            if session.broken or session.idle_for(now) >= self.idle_seconds:
                self.close(account_id)

    def close(self, account_id: str) -> None:
        session = self._sessions.pop(account_id, None)
        if session is not None:
            session.close()

    def close_all(self) -> None:
        for account_id in list(self._sessions):
            self.close(account_id)

    def forget(self, account_id: str) -> None:
        """The account changed or went away: close its session and clear its breaker."""
        self.close(account_id)
        self.breaker.forget(account_id)
        self._last_error.pop(account_id, None)

    def account_ids(self) -> set[str]:
        return set(self._sessions)

    def open_sessions(self) -> int:
        return sum(1 for session in self._sessions.values() if not session.broken)

    def running_stdio(self) -> int:
        return sum(1 for s in self._sessions.values() if s.target.transport == "stdio" and not s.broken)

    async def _session(self, target: UpstreamTarget) -> UpstreamSession:
        lock = self._opening.setdefault(target.account_id, anyio.Lock())
        async with lock:
            current = self._sessions.get(target.account_id)
            if current is not None and not current.broken and current.target.version == target.version:
                return current
            self.close(target.account_id)
            if target.transport == "stdio" and self.running_stdio() >= self.max_stdio:
                self._make_room_for_stdio()
            if self._tasks is None:
                raise UpstreamUnavailable("Upstream connections are not running (server shutting down)")
            session = UpstreamSession(
                target,
                on_tools_changed=lambda: self._on_tools_changed(target.organization_id, target.account_id),
                destinations=self.destinations,
            )
            await self._tasks.start(session.serve)
            if session.client is None:
                if session.http_status is not None:
                    raise UpstreamHTTPStatus(session.http_status)
                raise session.error or ConnectionError()
            self._sessions[target.account_id] = session
            return session

    def _make_room_for_stdio(self) -> None:
        now = anyio.current_time()
        idle = [
            (s.idle_for(now), a) for a, s in self._sessions.items() if s.target.transport == "stdio" and not s.in_flight
        ]
        if not idle:
            raise UpstreamUnavailable(f"Too many local upstreams running (at most {self.max_stdio}); try again")
        self.close(max(idle)[1])

    async def _guarded(self, target: UpstreamTarget, action: Callable[[UpstreamSession], Awaitable[Any]]) -> Any:
        retry_after = self.breaker.retry_after(target.account_id)
        if retry_after is not None:
            last = self._last_error.get(target.account_id, "repeated failures")
            raise UpstreamUnavailable(
                f"Upstream {target.describe()} is unavailable ({last}); retrying in {retry_after:.0f} s"
            )
        delay = self.breaker.backoff(target.account_id, self.backoff_seconds)
        if delay:
            await anyio.sleep(delay)  # reconnect with backoff: consecutive failures space out the attempts
        session: UpstreamSession | None = None
        try:
            session = await self._session(target)
            session.in_flight += 1
            try:
                with anyio.fail_after(target.timeout_seconds):
                    result = await action(session)
            finally:
                session.in_flight -= 1
                session.last_used = anyio.current_time()
        except UpstreamUnavailable:
            raise
        except Exception as raised:  # the upstream boundary: every failure becomes a message for the caller
            error = first_leaf(raised)
            if isinstance(error, MCPError) and error.error.code not in TRANSPORT_CODES:
                status = session.http_status if session is not None else None
                raise UpstreamUnavailable(upstream_message(error, target, status)) from None
            if not isinstance(error, TRANSPORT_ERRORS):
                logger.warning("upstream %s raised %s", target.describe(), type(error).__name__)
            await self._failed(target, error, session)
        if self.breaker.succeeded(target.account_id):
            await self._on_health(target.account_id, "ok", None)
        self._last_error.pop(target.account_id, None)
        return result

    async def _failed(self, target: UpstreamTarget, error: BaseException, session: UpstreamSession | None) -> None:
        if session is not None and not isinstance(error, TimeoutError):
            # The next call reconnects (a crashed stdio upstream is restarted). A call that only timed out
            # leaves the session to the others using it; the SDK tells the upstream to stop that call.
            self.close(target.account_id)
        message = upstream_message(error, target)
        self._last_error[target.account_id] = message
        if self.breaker.failed(target.account_id):
            await self._on_health(target.account_id, "error", message)
        raise UpstreamUnavailable(message) from None

    async def call_tool(
        self,
        target: UpstreamTarget,
        name: str,
        arguments: dict[str, Any],
        *,
        progress: ProgressFnT | None = None,
        log: LogFn | None = None,
    ) -> types.CallToolResult:
        async def call(session: UpstreamSession) -> types.CallToolResult:
            assert session.client is not None
            if log is not None:
                session.log_sinks.add(log)
            try:
                return await session.client.call_tool(name, arguments, progress_callback=progress)
            finally:
                if log is not None:
                    session.log_sinks.discard(log)

        result: types.CallToolResult = await self._guarded(target, call)
        return result

    async def list_tools(self, target: UpstreamTarget) -> list[types.Tool]:
        async def listing(session: UpstreamSession) -> list[types.Tool]:
            assert session.client is not None
            tools: list[types.Tool] = []
            cursor: str | None = None
            for _ in range(100):  # a paginator that never ends cannot hang us
                page = await session.client.list_tools(cursor=cursor, cache_mode="refresh")
                tools.extend(page.tools)
                cursor = page.next_cursor
                if cursor is None:
                    break
            return tools

        tools: list[types.Tool] = await self._guarded(target, listing)
        return tools


async def probe_tools(target: UpstreamTarget) -> list[types.Tool]:
    """Connects once, lists the upstream's tools and disconnects (for the CLI, which runs no pool)."""

    async def ignore_health(_account_id: str, _status: str, _error: str | None) -> None:
        return None

    pool = UpstreamPool(
        breaker=CircuitBreaker(threshold=1_000, cooldown=1.0, clock=time.time),
        idle_seconds=60.0,
        max_stdio=1,
        backoff_seconds=0.0,
        on_health=ignore_health,
        on_tools_changed=lambda _organization_id, _account_id: None,
        destinations=None,  # the CLI is the operator: it may connect anywhere
    )
    async with pool.running():
        return await pool.list_tools(target)
