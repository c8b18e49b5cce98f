"""Label values with a ceiling: the first ``limit`` distinct values are kept, later ones become ``other``.

Prometheus keeps one series per label combination forever; a label fed by clients (tool names,
MCP methods) or by tenants (organization ids) must not grow without bound.
"""

from __future__ import annotations

OTHER = "other"


class BoundedLabel:
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return OTHER
        self._seen.add(value)
        return value
