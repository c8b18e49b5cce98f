"""GET /api/runtime/capabilities (and /capabilities): the tools this key may use."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.state import app_state


async def capabilities(request: Request) -> Response:
    state = app_state(request)
    tools = await state.runtime.visible_tools(request.user)
    return Response(state.capabilities.get(tools, state.public_base_url), media_type="application/json")
