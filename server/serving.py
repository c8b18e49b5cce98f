"""How `capgate serve` runs uvicorn: one process, or N workers that each build the app from the environment.

Slow and oversized clients are bounded here: header size (h11's incomplete-event limit), idle
keep-alive connections, concurrent connections, and how long a client may take to send its headers
(uvicorn has no such timeout: a connection trickling a header byte at a time was held forever;
``TimedH11Protocol`` closes a connection whose request headers are not complete
``header_timeout_seconds`` after it opened or after its previous response). Bodies have their own
deadline in the app (``server.body_deadline``). ``X-Forwarded-For`` is believed only from
``trusted_proxies``. For internet exposure run capgate behind a buffering reverse proxy (README).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import h11
from starlette.applications import Starlette
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.settings import Settings


class TimedH11Protocol(H11Protocol):
    header_timeout: float = 10.0  # set from settings in each process before serving
    _header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE:
            self._disarm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)


def app_from_environment() -> Starlette:
    """The app factory each worker process calls (`--workers N`): settings come from CAPGATE_* and capgate.toml."""
    from server.app import create_app
    from server.logging_setup import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    TimedH11Protocol.header_timeout = settings.header_timeout_seconds
    return create_app(settings)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    trusted = settings.trusted_proxies
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "http": TimedH11Protocol,
        "h11_max_incomplete_event_size": settings.max_header_bytes,
        "timeout_keep_alive": int(max(1, settings.keep_alive_timeout_seconds)),
        "limit_concurrency": settings.max_connections,
        # X-Forwarded-For / -Proto rewrite the client address only when the peer is a configured proxy.
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }


def run_server(settings: Settings) -> None:
    import uvicorn

    TimedH11Protocol.header_timeout = settings.header_timeout_seconds
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
