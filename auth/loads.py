"""Cache fills that lose a race with an invalidation must not store what they read."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class LoadGuard(Generic[K]):
    """A load that began before ``invalidate(key)`` read a row that has changed since: caching its
    result would put the old value back until the cache's TTL ends (issue 18 item 1)."""

    def __init__(self) -> None:
        self._tokens: dict[K, object] = {}

    def start(self, key: K) -> object:
        token = object()
        self._tokens[key] = token
        return token

    def finish(self, key: K, token: object) -> bool:
        """True when nothing invalidated ``key`` since ``start``: the result may be cached."""
        if self._tokens.get(key) is not token:
            return False
        del self._tokens[key]
        return True

    def invalidate(self, key: K) -> None:
        self._tokens.pop(key, None)

    def invalidate_all(self) -> None:
        self._tokens.clear()
