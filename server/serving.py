"""How `capgate serve` runs uvicorn: one process, or N workers that each build the app from the environment.

HTTP is parsed by httptools (llhttp) on uvloop, uvicorn's fastest pair. Slow and oversized clients
are bounded here: header size, idle keep-alive connections, concurrent connections, and how long a
client may take to send its headers (uvicorn has neither bound for httptools: a connection
trickling a header byte at a time was held forever; ``TimedHttpToolsProtocol`` closes a connection
whose request headers are not complete ``header_timeout_seconds`` after it opened or after its
previous response, and answers 400 to headers past ``max_header_bytes``). Bodies have their own
deadline in the app (``server.body_deadline``). ``X-Forwarded-For`` is believed only from
``trusted_proxies``. For internet exposure run capgate behind a buffering reverse proxy (README).
"""

from __future__ import annotations

import asyncio
import functools
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.applications import Starlette
from starlette.types import ASGIApp
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.settings import Settings


class TimedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools (llhttp) protocol, about twice as fast at parsing as h11, with h11's two bounds added:
    request headers must be complete within ``header_timeout`` and within ``max_header_bytes``."""

    header_timeout: float = 10.0  # both set from settings in each process before serving
    max_header_bytes: int = 16_384
    _header_timer: asyncio.TimerHandle | None = None
    _awaiting_headers = True
    _header_bytes = 0

    def _await_headers(self) -> None:
        self._awaiting_headers, self._header_bytes = True, 0
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self._awaiting_headers and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_headers()

    def data_received(self, data: bytes) -> None:
        awaiting = self._awaiting_headers
        super().data_received(data)
        # Counted only while headers are still incomplete after the read: a read that completes them
        # may carry the body too. The bound holds to within one read (at most 256 KiB).
        if awaiting and self._awaiting_headers and not self.transport.is_closing():
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self.send_400_response("Request headers too large.")

    def on_header(self, name: bytes, value: bytes) -> None:
        # RFC 9110 §5.5: a field value excludes the whitespace around it. llhttp drops the leading part
        # only; h11 dropped both, and the MCP header checks (Mcp-Name against the body) compare exactly.
        super().on_header(name, value.rstrip(b" \t"))

    def on_headers_complete(self) -> None:
        self._awaiting_headers = False
        self._disarm_header_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)


def configure_protocol(settings: Settings) -> None:
    TimedHttpToolsProtocol.header_timeout = settings.header_timeout_seconds
    TimedHttpToolsProtocol.max_header_bytes = settings.max_header_bytes


def app_from_environment() -> Starlette:
    """The app factory each worker process calls (`--workers N`): settings come from CAPGATE_* and capgate.toml."""
    from server.app import create_app
    from server.logging_setup import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    configure_protocol(settings)
    return create_app(settings, own_address=functools.partial(own_listener, settings=settings))


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    trusted = settings.trusted_proxies
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "http": TimedHttpToolsProtocol,
        "loop": "uvloop",
        "timeout_keep_alive": int(max(1, settings.keep_alive_timeout_seconds)),
        "limit_concurrency": settings.max_connections,
        # X-Forwarded-For / -Proto rewrite the client address only when the peer is a configured proxy.
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }


def run_server(settings: Settings) -> None:
    import uvicorn

    configure_protocol(settings)
    if settings.workers > 1:
        from server.observability.workers import prepare_workers

        # Workers are new processes: what the command line overrode must reach them through the environment.
        os.environ.update(
            CAPGATE_HOST=settings.host, CAPGATE_PORT=str(settings.port), CAPGATE_WORKERS=str(settings.workers)
        )
        prepare_workers(settings)  # before any worker starts: they share one directory of metrics
        uvicorn.run(
            "server.serving:app_from_environment",
            factory=True,
            workers=settings.workers,
            # A worker imports the whole app before it answers its first health check: time for a busy machine.
            timeout_worker_healthcheck=30,
            **uvicorn_options(settings),
        )
        return
    from server.app import create_app
    from server.logging_setup import configure_logging

    configure_logging(settings.log_level)
    uvicorn.run(create_app(settings), **uvicorn_options(settings))


def worker_url(settings: Settings, port: int) -> str:
    """The replica URL with a worker's own port."""
    parts = urlsplit(settings.resolved_replica_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, "", "", ""))


@asynccontextmanager
async def own_listener(app: ASGIApp, *, settings: Settings) -> AsyncIterator[str | None]:
    """A worker's own address (``--workers N``), so legacy MCP sessions work across workers.

    uvicorn's workers accept from one shared socket, so any request may land on any worker, while a
    legacy session's server loop lives in the worker that answered its ``initialize``. With one
    address for all, a worker could not tell a sibling's session from its own and answered 404. So
    each worker also serves ``app`` on an ephemeral port of its own on the bind address, and claims
    its sessions at ``CAPGATE_REPLICA_URL``'s host with that port (yielded here); a sibling, or
    another replica, relays to it like to any owner. Yields None with a single worker.
    """
    if settings.workers <= 1:
        yield None
        return
    import uvicorn

    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((settings.host, 0))
    options = {**uvicorn_options(settings), "lifespan": "off", "timeout_graceful_shutdown": 1}
    del options["host"], options["port"], options["loop"]
    config = uvicorn.Config(app, **options)
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)
    await server.startup(sockets=[sock])
    try:
        yield worker_url(settings, int(sock.getsockname()[1]))
    finally:
        await server.shutdown(sockets=[sock])
