"""Attempt budgets: at most ``limit`` attempts per key (an email, a source address) per window.

An attempt is counted when it is *reserved*, before the slow check runs, so attempts that
arrive together cannot overshoot the limit (issue 18 item 8); a success hands its
reservation back.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class AttemptBudget(Generic[K]):
    def __init__(
        self, *, limit: int, window: float, monotonic: Callable[[], float], max_tracked: int = 100_000
    ) -> None:
        self._limit = limit
        self._window = window
        self._monotonic = monotonic
        self._max_tracked = max_tracked
        self._counts: OrderedDict[K, tuple[float, int]] = OrderedDict()

    def retry_after(self, key: K) -> int | None:
        """Whole seconds until ``key`` may try again, or None when it has attempts left."""
        entry = self._counts.get(key)
        if entry is None:
            return None
        started, count = entry
        elapsed = self._monotonic() - started
        if elapsed >= self._window:
            del self._counts[key]
            return None
        if count < self._limit:
            return None
        return max(1, math.ceil(self._window - elapsed))

    def reserve(self, key: K) -> int | None:
        """Counts one attempt; returns the retry-after seconds instead when none is left."""
        retry = self.retry_after(key)
        if retry is not None:
            return retry
        started, count = self._counts.get(key, (self._monotonic(), 0))
        self._counts[key] = (started, count + 1)
        self._counts.move_to_end(key)
        while len(self._counts) > self._max_tracked:
            self._counts.popitem(last=False)
        return None

    def give_back(self, key: K) -> None:
        """The attempt succeeded: it does not count against the limit."""
        entry = self._counts.get(key)
        if entry is not None:
            started, count = entry
            if count <= 1:
                del self._counts[key]
            else:
                self._counts[key] = (started, count - 1)

    def reset(self, key: K) -> None:
        self._counts.pop(key, None)
