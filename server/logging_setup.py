"""JSON lines on stderr for every capgate logger."""

from __future__ import annotations

import json
import logging
from typing import Any

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "color_message",
}


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._time = ""

    def _formatted_time(self, record: logging.LogRecord) -> str:
        # Every request logs a line: format each second once, not once per line.
        second = int(record.created)
        if second != self._second:
            self._time, self._second = self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), second
        return self._time

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self._formatted_time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        payload.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str)


def configure_logging(level: str) -> None:
    # The lines carry none of the caller's file, line, thread or process: skip collecting them for every
    # record (the logging HOWTO's "Optimization" section; the request log writes one line per request).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    logging.getLogger("uvicorn.access").disabled = True  # RequestObservationMiddleware logs every request once
