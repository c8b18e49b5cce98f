"""How `capgate serve` runs uvicorn: one process, or N workers that each build the app from the environment."""

from __future__ import annotations

import os
from typing import Any

from starlette.applications import Starlette

from server.settings import Settings


def app_from_environment() -> Starlette:
    """The app factory each worker process calls (`--workers N`): settings come from CAPGATE_* and capgate.toml."""
    from server.app import create_app
    from server.logging_setup import configure_logging

    settings = Settings()
    configure_logging(settings.log_level)
    return create_app(settings)


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    return {
        "host": settings.host,
        "port": settings.port,
        "log_config": None,
        "access_log": False,
        "proxy_headers": True,
        "timeout_graceful_shutdown": settings.shutdown_timeout_seconds,
    }


def run_server(settings: Settings) -> None:
    import uvicorn

    if settings.workers > 1:
        from server.observability.workers import prepare_workers

        # Workers are new processes: what the command line overrode must reach them through the environment.
        os.environ.update(CAPGATE_HOST=settings.host, CAPGATE_PORT=str(settings.port))
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
