"""A TCP proxy in front of the real Redis, to make it unavailable the ways production sees it.

``forward``: passes bytes both ways. ``silent``: accepts connections and reads, but never answers
(a hung Redis). ``down``: the listener is closed and open connections are cut (connection refused).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

import anyio
from anyio.abc import ByteStream, SocketListener, TaskGroup

REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
Mode = Literal["forward", "silent", "down"]


@dataclass
class RedisProxy:
    tasks: TaskGroup
    listener: SocketListener | None = None
    port: int = 0
    mode: Mode = "forward"
    bytes_to_redis: int = 0
    _connections: set[anyio.CancelScope] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        listeners = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=self.port)
        self.listener = listeners.listeners[0]
        self.port = self.listener.extra(anyio.abc.SocketAttribute.local_port)
        self.tasks.start_soon(self._serve, self.listener)

    async def _serve(self, listener: SocketListener) -> None:
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                return  # set("down") closed the listener
            self.tasks.start_soon(self._handle, stream)

    async def set(self, mode: Mode) -> None:
        previous, self.mode = self.mode, mode
        if mode == "down":
            for scope in list(self._connections):
                scope.cancel()
            if self.listener is not None:
                await self.listener.aclose()
                self.listener = None
        elif previous == "down":
            await self.start()

    async def _handle(self, client: ByteStream) -> None:
        with anyio.CancelScope() as scope:
            self._connections.add(scope)
            try:
                async with client, await anyio.connect_tcp(REDIS_HOST, REDIS_PORT) as upstream:
                    async with anyio.create_task_group() as pipes:
                        pipes.start_soon(self._pipe, client, upstream, True, pipes.cancel_scope)
                        pipes.start_soon(self._pipe, upstream, client, False, pipes.cancel_scope)
            except OSError:
                pass  # Redis itself refused
            finally:
                self._connections.discard(scope)

    async def _pipe(self, source: ByteStream, target: ByteStream, to_redis: bool, both: anyio.CancelScope) -> None:
        try:
            async for chunk in source:
                if self.mode != "forward":
                    continue  # silent: swallow requests and answers alike
                if to_redis:
                    self.bytes_to_redis += len(chunk)
                await target.send(chunk)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        both.cancel()  # one side closed: close the other


@asynccontextmanager
async def redis_proxy() -> AsyncIterator[RedisProxy]:
    async with anyio.create_task_group() as tasks:
        proxy = RedisProxy(tasks)
        await proxy.start()
        try:
            yield proxy
        finally:
            await proxy.set("down")
            tasks.cancel_scope.cancel()
