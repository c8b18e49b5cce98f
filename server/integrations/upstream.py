"""What it takes to reach one connected account's upstream, and one open client session to it."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from itertools import count
from typing import Any, Literal

import anyio
import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from server.integrations.destinations import DestinationRefused, DestinationRules, guarded_transport

logger = logging.getLogger(__name__)
LOG_LEVELS = ("debug", "info", "notice", "warning", "error")
Backend = Literal["mcp-http", "mcp-stdio"]
LogFn = Callable[[str, str], Awaitable[None]]


class UpstreamHTTPStatus(Exception):
    def __init__(self, status: int) -> None:
        self.status = status
        super().__init__(f"HTTP {status}")


# Failures of the connection itself (not of a tool): they count toward the circuit breaker.
TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    httpx2.HTTPError,
    anyio.ClosedResourceError,
    anyio.BrokenResourceError,
    anyio.EndOfStream,
    MCPError,
    UpstreamHTTPStatus,
)


@dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """One account's upstream, with its opened credential (never in repr, logs or errors)."""

    account_id: str
    organization_id: str
    integration_id: str
    transport: str
    url: str | None
    command: tuple[str, ...]
    credential_header: str | None
    credential_template: str
    credential_env: str | None
    timeout_seconds: float
    url_from_operator: bool
    version: str
    """Changes whenever the integration or the account changes: an open connection of another version is closed."""
    credential: str = field(repr=False)

    @property
    def backend(self) -> Backend:
        return "mcp-stdio" if self.transport == "stdio" else "mcp-http"

    def describe(self) -> str:
        return f"{self.integration_id} ({self.account_id})"

    async def connect(
        self, stack: AsyncExitStack, on_status: Callable[[int], None], destinations: DestinationRules | None
    ) -> Any:
        """The SDK client's server argument; resources it needs are closed with ``stack``. ``on_status``
        hears HTTP error statuses, which the SDK reports only as "Server returned an error response".
        A URL set over HTTP connects only where ``destinations`` allow; the operator's (CLI) anywhere."""
        if self.transport == "stdio":
            env = {self.credential_env: self.credential} if self.credential_env else {}
            return StdioServerParameters(command=self.command[0], args=list(self.command[1:]), env=env)
        headers = {}
        if self.credential_header:
            headers[self.credential_header] = self.credential_template.replace("{secret}", self.credential)
        timeout = httpx2.Timeout(self.timeout_seconds, read=None)

        async def hear(response: httpx2.Response) -> None:
            if response.status_code >= 400 and response.request.method == "POST":
                on_status(response.status_code)

        hooks = {"response": [hear]}
        guarded = destinations is not None and not self.url_from_operator
        http = await stack.enter_async_context(
            httpx2.AsyncClient(
                headers=headers,
                timeout=timeout,
                event_hooks=hooks,
                follow_redirects=False,
                transport=guarded_transport(destinations) if guarded and destinations else None,
            )
        )
        return streamable_http_client(self.url or "", http_client=http)


def upstream_message(error: BaseException, target: UpstreamTarget, status: int | None = None) -> str:
    """A failure as the caller reads it: what went wrong, never a stack trace or a credential."""
    if isinstance(error, UpstreamHTTPStatus):
        status = error.status
    if isinstance(error, DestinationRefused):
        text = f"refused: {error}"
    elif status is not None and not isinstance(error, TimeoutError):
        rejected = " (the upstream rejected the credential)" if status in (401, 403) else ""
        text = f"HTTP {status}{rejected}"
    elif isinstance(error, TimeoutError):
        text = f"did not answer within {target.timeout_seconds:g} s"
    elif isinstance(error, MCPError):
        text = error.error.message
    elif isinstance(error, httpx2.HTTPStatusError):
        text = f"HTTP {error.response.status_code}"
    elif isinstance(error, OSError | httpx2.HTTPError):
        text = f"cannot connect ({type(error).__name__})"
    elif isinstance(error, anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream):
        text = "connection closed"
    else:
        text = f"unexpected {type(error).__name__}"
    return f"Upstream {target.describe()} failed: {text}".replace(target.credential, "[credential]")


class UpstreamSession:
    """One SDK client session to one account, held open by its own task until closed or idle."""

    def __init__(
        self, target: UpstreamTarget, *, on_tools_changed: Callable[[], None], destinations: DestinationRules | None
    ) -> None:
        self.target = target
        self.destinations = destinations
        self.client: Client | None = None
        self.in_flight = 0
        self.last_used = anyio.current_time()
        self.broken = False
        self.error: BaseException | None = None
        self.http_status: int | None = None
        self.log_sinks: set[LogFn] = set()
        self._close = anyio.Event()
        self._on_tools_changed = on_tools_changed

    async def serve(self, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        """Opens the session and holds it until ``close``; failures end up in ``error``, never raised:
        this task lives in the pool's task group, which must outlive any one upstream."""

        async def on_message(message: Any) -> None:
            if isinstance(message, types.ToolListChangedNotification):
                self._on_tools_changed()

        started = False
        connecting = anyio.CancelScope(deadline=anyio.current_time() + self.target.timeout_seconds)
        try:
            with connecting:
                async with AsyncExitStack() as stack:
                    client = Client(
                        await self.target.connect(stack, self._heard_status, self.destinations),
                        mode="auto",
                        read_timeout_seconds=self.target.timeout_seconds,
                        message_handler=on_message,
                        logging_callback=self._forward_log,
                        log_level="info",  # 2026-07-28 servers send log messages only to requests that opt in
                        cache=None,
                    )
                    await stack.enter_async_context(client)
                    connecting.deadline = math.inf
                    self.client = client
                    started = True
                    task_status.started()
                    async with anyio.create_task_group() as background:
                        background.start_soon(self._hear_tool_changes, client)
                        await self._close.wait()
                        background.cancel_scope.cancel()
            if connecting.cancelled_caught:
                self.error = TimeoutError()
        except Exception as error:  # the upstream's failure, reported to the calls that wait for it
            self.error = error
            logger.info("upstream %s closed: %s", self.target.describe(), type(error).__name__)
        finally:
            self.client = None
            self.broken = True
            if not started:
                task_status.started()

    async def _hear_tool_changes(self, client: Client) -> None:
        """A 2026-07-28 upstream announces tool changes only on a ``subscriptions/listen`` stream (a legacy
        one on its session, see ``on_message``). The stream is re-opened after it ends, with backoff; there
        is no replay, so each re-opened stream refetches the listing."""
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            return
        delay = 0.0
        for attempt in count():
            try:
                async with client.listen(tools_list_changed=True) as subscription:
                    if not subscription.honored.tools_list_changed:
                        return
                    delay = 0.0
                    if attempt:
                        self._on_tools_changed()
                    async for _ in subscription:
                        self._on_tools_changed()
            except Exception as error:  # the listen stream's failure; calls on the session report their own
                logger.info("tool changes of %s not heard: %s", self.target.describe(), type(error).__name__)
            delay = min(max(delay * 2, 1.0), 60.0)
            await anyio.sleep(delay)

    def _heard_status(self, status: int) -> None:
        self.http_status = status

    async def _forward_log(self, params: types.LoggingMessageNotificationParams) -> None:
        level = params.level if params.level in LOG_LEVELS else "error"
        message = params.data if isinstance(params.data, str) else json.dumps(params.data, default=str)
        for sink in list(self.log_sinks):
            await sink(level, message)

    def close(self) -> None:
        self.broken = True
        self._close.set()

    def idle_for(self, now: float) -> float:
        return 0.0 if self.in_flight else now - self.last_used
