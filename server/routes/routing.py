"""Routes declare the scope they need, or that they are public; nothing is public by default."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.errors import InsufficientScope, send_error
from auth.principal import Principal
from auth.scopes import RUNTIME
from server.observability.observed import route_decision

Endpoint = Callable[[Request], Awaitable[Response]]


class ScopedRoute(Route):
    """A handler that needs ``scope``: 403 ``insufficient_scope`` before the handler runs otherwise.

    The decision is recorded (server/observability): refusals always; allowed ones here for runtime routes
    other than a tool call, whose decision is the runtime's (it names the tool and the rule).
    """

    public = False

    def __init__(self, path: str, endpoint: Endpoint, *, scope: str, methods: Sequence[str] = ("GET",)) -> None:
        self.required_scope = scope
        record_allowed = scope == RUNTIME and "{tool_name}" not in path

        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            if not route_decision(request.scope, request.user, scope, record_allowed=record_allowed):
                raise InsufficientScope(scope)
            return await endpoint(request)

        super().__init__(path, guarded, methods=list(methods))


class PublicRoute(Route):
    """A route that needs no key (health, OpenAPI, the password login); the auth middleware skips its path."""

    public = True

    def __init__(self, path: str, endpoint: Endpoint, *, methods: Sequence[str] = ("GET",)) -> None:
        super().__init__(path, endpoint, methods=list(methods))


def public_paths(routes: Sequence[BaseRoute]) -> list[str]:
    return [route.path for route in routes if isinstance(route, PublicRoute)]


class ScopeGuard:
    """The scope check for a mounted ASGI app (the MCP endpoint), answering as JSON-RPC."""

    def __init__(self, app: ASGIApp, scope: str) -> None:
        self.app = app
        self.required_scope = scope

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal: Principal = scope["user"]
        # MCP messages (POST) are decided one by one in the MCP server; GET streams and DELETE here.
        record_allowed = self.required_scope == RUNTIME and scope["method"] != "POST"
        if not route_decision(scope, principal, self.required_scope, record_allowed=record_allowed):
            await send_error(send, InsufficientScope(self.required_scope), jsonrpc=True)
            return
        await self.app(scope, receive, send)


class ScopedAppRoute(Route):
    """A mounted ASGI app (the MCP endpoint) that needs ``scope``, taking every method."""

    public = False

    def __init__(self, path: str, app: ASGIApp, *, scope: str) -> None:
        self.required_scope = scope
        super().__init__(path, ScopeGuard(app, scope), methods=None)
