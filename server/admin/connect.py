"""The "connect a client" page and the snippets shown next to a new key, from the one set of client configs."""

from __future__ import annotations

import shlex

from starlette.requests import Request
from starlette.responses import Response

from server.admin.web import render, signed_in
from server.cli.client_configs import CLIENTS, DEFAULT_KEY_ENV, get_client
from server.state import app_state


def claude_add_line(base_url: str) -> str:
    script = get_client("claude-code").render(base_url=base_url)
    return next(line for line in script.splitlines() if line.startswith("claude mcp add"))


def key_snippets(base_url: str, secret: str) -> dict[str, str]:
    """What to paste right after creating a key: the key goes into an environment variable, nowhere else."""
    return {
        "export": f"export {DEFAULT_KEY_ENV}={shlex.quote(secret)}",
        "claude": claude_add_line(base_url),
        "config": f"capgate config claude-code --url {shlex.quote(base_url)}",
    }


async def connect_page(request: Request) -> Response:
    user = await signed_in(request)
    base_url = app_state(request).public_base_url
    clients = [
        {"name": client.name, "title": client.title, "where": client.where, "text": client.render(base_url=base_url)}
        for client in CLIENTS
    ]
    context = {"clients": clients, "mcp_url": f"{base_url}/mcp", "key_env": DEFAULT_KEY_ENV, "active": "connect"}
    return render(request, "connect.html", context, user=user)
