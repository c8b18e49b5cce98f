"""``capgate serve --workers N``: each worker's own address, so legacy MCP sessions work across workers.

uvicorn's workers accept connections from one shared socket, so any request may land on any worker,
while a legacy session's server loop lives in the worker that answered its ``initialize``. With one
address for all workers, a worker could not tell a sibling's session from its own (same owner URL),
and answered it 404. So each worker also listens on a port of its own — an ephemeral port on the
bind address, serving the same app — and claims its sessions at that address: the scheme and host of
``CAPGATE_REPLICA_URL`` (default: the bound address) with the worker's port. A request that lands
on a sibling, or on another replica, is then relayed to the owning worker like to any other owner.
The port must be reachable from the other replicas (it is on the same host and interface as the
main port).
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

from starlette.types import ASGIApp

from server.settings import Settings


def worker_url(settings: Settings, port: int) -> str:
    """The replica URL with this worker's own port."""
    parts = urlsplit(settings.resolved_replica_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, "", "", "")).rstrip("/")


@asynccontextmanager
async def own_listener(app: ASGIApp, settings: Settings) -> AsyncIterator[str | None]:
    """With several workers: serves ``app`` on a port of this worker's own and yields its URL; else yields None."""
    if settings.workers <= 1:
        yield None
        return
    import uvicorn

    from server.serving import uvicorn_options

    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, 0))
    options = {**uvicorn_options(settings), "lifespan": "off", "timeout_graceful_shutdown": 1}
    del options["host"], options["port"]
    config = uvicorn.Config(app, **options)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        yield worker_url(settings, int(sock.getsockname()[1]))
    finally:
        await server.shutdown(sockets=[sock])
