"""How ``capgate serve`` runs uvicorn: bounded headers, idle and header timeouts, a connection cap, and
``X-Forwarded-For`` believed only from configured proxies.

uvicorn bounds header size (h11's incomplete-event limit) and idle keep-alive connections, but not
how long a client may take to send its headers: a connection trickling a header byte at a time was
held forever. ``timed_h11_protocol`` closes a connection whose request headers are not complete
``header_timeout`` seconds after it opened or after its previous response. Bodies have their own
deadline in the app (``server.body_deadline``), so it holds behind any server. For internet exposure
run capgate behind a reverse proxy that buffers requests (README, Operations).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from server.settings import Settings


def timed_h11_protocol(header_timeout: float) -> type[H11Protocol]:
    class TimedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def _arm_header_timer(self) -> None:
            self._disarm_header_timer()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

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

    return TimedH11Protocol


def uvicorn_config(app: Any, settings: Settings) -> uvicorn.Config:
    trusted = settings.trusted_proxies
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        http=timed_h11_protocol(settings.header_timeout_seconds),
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=int(max(1, settings.keep_alive_timeout_seconds)),
        limit_concurrency=settings.max_connections,
        # X-Forwarded-For / -Proto rewrite the client address only when the peer is a configured proxy.
        proxy_headers=bool(trusted),
        forwarded_allow_ips=trusted or None,
        timeout_graceful_shutdown=5,
    )
