"""``capgate serve --workers N``: metrics shared by every worker process.

prometheus_client's multi-process mode keeps each worker's values in memory-mapped files
under ``PROMETHEUS_MULTIPROC_DIR``; any worker's ``/metrics`` (and the ``metrics_bind``
listener, served here by the parent process) sums them. The directory must be set, and
empty, before the workers start.
"""

from __future__ import annotations

import os
import shutil

from prometheus_client import start_http_server

from server.observability.exposition import split_bind
from server.observability.metrics import MULTIPROC_ENV, all_workers_registry
from server.settings import Settings


def prepare_workers(settings: Settings) -> None:
    directory = os.environ.get(MULTIPROC_ENV) or str(settings.data_dir / "metrics")
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    os.environ[MULTIPROC_ENV] = directory
    if settings.metrics_bind:
        host, port = split_bind(settings.metrics_bind)
        start_http_server(port, addr=host, registry=all_workers_registry())
