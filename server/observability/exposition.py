"""Serving the metrics: ``GET /metrics`` (scope ``metrics:read``) and the optional separate listener."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import start_http_server
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from starlette.requests import Request
from starlette.responses import Response

from server.observability.metrics import Metrics, multiprocess_dir
from server.state import app_state


async def metrics_endpoint(request: Request) -> Response:
    return Response(app_state(request).metrics.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)


def split_bind(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]") or "127.0.0.1", int(port)


@contextmanager
def serve_metrics_bind(bind: str | None, metrics: Metrics) -> Iterator[None]:
    """The keyless /metrics listener of a single-process server (``capgate serve --workers N`` runs its own)."""
    if bind is None or multiprocess_dir() is not None:
        yield
        return
    host, port = split_bind(bind)
    server, _thread = start_http_server(port, addr=host, registry=metrics.registry)
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
