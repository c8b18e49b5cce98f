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

Endpoint = Callable[[Request], Awaitable[Response]]


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise InsufficientScope(scope)


class ScopedRoute(Route):
    """A handler that needs ``scope``: 403 ``insufficient_scope`` before the handler runs otherwise."""

    public = False

    def __init__(self, path: str, endpoint: Endpoint, *, scope: str, methods: Sequence[str] = ("GET",)) -> None:
        self.required_scope = scope

        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            require_scope(request.user, scope)
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
        if not principal.has_scope(self.required_scope):
            await send_error(send, InsufficientScope(self.required_scope), jsonrpc=True)
            return
        await self.app(scope, receive, send)


class ScopedAppRoute(Route):
    """A mounted ASGI app (the MCP endpoint) that needs ``scope``, taking every method."""

    public = False

    def __init__(self, path: str, app: ASGIApp, *, scope: str) -> None:
        self.required_scope = scope
        super().__init__(path, ScopeGuard(app, scope), methods=None)
