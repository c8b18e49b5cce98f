"""Routes declare the scope they need, or that they are public; nothing is public by default."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.errors import InsufficientScope
from auth.middleware import send_error
from auth.principal import Principal

Endpoint = Callable[[Request], Awaitable[Response]]


def require_scope(principal: Principal, scope: str) -> None:
    if not principal.has_scope(scope):
        raise InsufficientScope(scope)


def scoped_route(path: str, endpoint: Endpoint, *, scope: str, methods: Sequence[str] = ("GET",)) -> Route:
    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        require_scope(request.user, scope)
        return await endpoint(request)

    route = Route(path, guarded, methods=list(methods))
    route.required_scope = scope  # type: ignore[attr-defined]
    return route


def public_route(path: str, endpoint: Endpoint, *, methods: Sequence[str] = ("GET",)) -> Route:
    route = Route(path, endpoint, methods=list(methods), include_in_schema=True)
    route.public = True  # type: ignore[attr-defined]
    return route


def public_paths(routes: Sequence[BaseRoute]) -> list[str]:
    return [route.path for route in routes if isinstance(route, Route) and getattr(route, "public", False)]


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


def scoped_asgi_route(path: str, app: ASGIApp, *, scope: str) -> Route:
    route = Route(path, ScopeGuard(app, scope), methods=None)
    route.required_scope = scope  # type: ignore[attr-defined]
    return route
