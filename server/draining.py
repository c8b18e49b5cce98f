"""Graceful shutdown behind a load balancer: on SIGTERM, first stop being ready, then stop.

uvicorn stops accepting connections the moment it is told to exit, so a load balancer that has not yet seen
the replica fail its health check would send it requests that are refused. `Drain` wraps the exit handlers
uvicorn installed: the first SIGTERM/SIGINT only marks the process as draining (`/readyz` answers 503) and
hands the signal on to uvicorn `shutdown_drain_seconds` later; uvicorn then lets in-flight requests finish for
up to `shutdown_timeout_seconds`. A second signal exits at once. It is installed from the app's lifespan, so it
works the same in every worker of `capgate serve --workers N`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from types import FrameType
from typing import Any

logger = logging.getLogger("capgate.drain")
SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Drain:
    def __init__(self, *, delay_seconds: float) -> None:
        self.delay_seconds = delay_seconds
        self.draining = False
        self._originals: dict[int, Any] = {}

    def install(self) -> None:
        """Wraps the handlers uvicorn installed (from the lifespan; apps run in another thread have none to wrap)."""
        if threading.current_thread() is not threading.main_thread():
            return
        loop = asyncio.get_running_loop()
        for sig in SIGNALS:
            original = signal.getsignal(sig)
            if not callable(original):
                continue  # not run by uvicorn (tests drive the app in-process): nothing to wrap
            self._originals[sig] = original

            def handler(signum: int, frame: FrameType | None, original: Any = original) -> None:
                if self.draining or self.delay_seconds <= 0:
                    self.draining = True
                    original(signum, frame)
                    return
                self.draining = True
                logger.info("draining: not ready for %.1f s, then finishing in-flight requests", self.delay_seconds)
                loop.call_soon_threadsafe(loop.call_later, self.delay_seconds, original, signum, frame)

            signal.signal(sig, handler)

    def uninstall(self) -> None:
        for sig, original in self._originals.items():
            signal.signal(sig, original)
        self._originals.clear()
