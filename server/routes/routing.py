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
from auth.scopes import RUNTIME
from server.observability.observed import route_decision

Endpoint = Callable[[Request], Awaitable[Response]]


def scoped_route(path: str, endpoint: Endpoint, *, scope: str, methods: Sequence[str] = ("GET",)) -> Route:
    # A tool call's decision is the runtime's (it names the tool and the rule); other runtime routes decide here.
    record_allowed = scope == RUNTIME and "{tool_name}" not in path

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Response:
        if not route_decision(request.scope, request.user, scope, record_allowed=record_allowed):
            raise InsufficientScope(scope)
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
        # MCP messages (POST) are decided one by one in the MCP server; GET streams and DELETE here.
        record_allowed = self.required_scope == RUNTIME and scope["method"] != "POST"
        if not route_decision(scope, principal, self.required_scope, record_allowed=record_allowed):
            await send_error(send, InsufficientScope(self.required_scope), jsonrpc=True)
            return
        await self.app(scope, receive, send)


def scoped_asgi_route(path: str, app: ASGIApp, *, scope: str) -> Route:
    route = Route(path, ScopeGuard(app, scope), methods=None)
    route.required_scope = scope  # type: ignore[attr-defined]
    return route
