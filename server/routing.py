"""Routes declare the scope they need, or that they are public; nothing is public by default."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from auth.errors import InsufficientScope
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
