"""2026-07-28 ``subscriptions/listen`` per API key: each key hears only about its own tool list.

The SDK's ``ListenHandler`` fans one bus out to every stream; here each key gets its own handler
and bus, so ``notifications/tools/list_changed`` reaches a key's listen streams only when that
key's visible list may have changed (its grant, or a switch of a tool it may use). Ending a key's
subscriptions (the kill switch) closes them gracefully — each stream sends the spec's completion
result (``SubscriptionsListenResult``) as its last frame — before its requests are cut off.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged

from auth.principal import Principal

PrincipalOf = Callable[[ServerRequestContext[Any, Any]], Principal]


@dataclass
class _KeyStreams:
    principal: Principal
    bus: InMemorySubscriptionBus = field(default_factory=InMemorySubscriptionBus)
    handler: ListenHandler = field(init=False)
    open_requests: int = 0
    idle: anyio.Event = field(default_factory=anyio.Event)

    def __post_init__(self) -> None:
        self.handler = ListenHandler(self.bus)


class KeyListeners:
    def __init__(self, principal_of: PrincipalOf) -> None:
        self._principal_of = principal_of
        self._keys: dict[str, _KeyStreams] = {}

    def _streams(self, principal: Principal) -> _KeyStreams:
        streams = self._keys.get(principal.key_id)
        if streams is None:
            streams = self._keys[principal.key_id] = _KeyStreams(principal)
        return streams

    async def listen(
        self, ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """The ``on_subscriptions_listen`` handler."""
        return await self._streams(self._principal_of(ctx)).handler(ctx, params)

    async def track(self, principal: Principal, serve: Callable[[], Awaitable[None]]) -> None:
        """Runs one ``subscriptions/listen`` HTTP request, so ``end`` can wait for its last frame."""
        streams = self._streams(principal)
        streams.open_requests += 1
        try:
            await serve()
        finally:
            streams.open_requests -= 1
            if streams.open_requests == 0:
                streams.idle.set()
                streams.idle = anyio.Event()
                if self._keys.get(principal.key_id) is streams:
                    del self._keys[principal.key_id]

    def principal(self, key_id: str) -> Principal | None:
        streams = self._keys.get(key_id)
        return streams.principal if streams is not None else None

    def principals(self, organization_id: str) -> list[Principal]:
        return [s.principal for s in self._keys.values() if s.principal.organization_id == organization_id]

    async def notify(self, key_id: str) -> None:
        streams = self._keys.get(key_id)
        if streams is not None:
            await streams.bus.publish(ToolsListChanged())

    async def end(self, key_id: str, *, wait_seconds: float = 1.0) -> None:
        """Ends the key's listen streams with the completion result, waiting (bounded) until sent."""
        streams = self._keys.get(key_id)
        if streams is None or streams.open_requests == 0:
            return
        streams.handler.close()
        with anyio.move_on_after(wait_seconds):
            await streams.idle.wait()
