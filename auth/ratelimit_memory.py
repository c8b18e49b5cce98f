"""The in-process rate-limit backend: exact sliding-window log plus daily counters, for one replica.

Daily counts are kept in memory and written to the database in batches by the usage
flusher (``dirty_daily`` / ``mark_written`` / ``load_daily``), never on the request path.
What is written is the increase since this process's last write, added to the stored
count, so two processes counting the same key (a rolling restart) add up instead of
overwriting each other. The trade-off: a
crash (not a clean shutdown, which flushes) forgets at most ``usage_flush_seconds`` of
counts, so a key may get that many seconds' worth of extra requests on the day of a crash.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from auth.ratelimit import Decision, Limits, seconds_to_midnight, utc_day

WINDOW = 1.0


class InProcessBackend:
    def __init__(self) -> None:
        self._windows: dict[str, deque[float]] = {}
        self._daily: dict[str, tuple[int, int]] = {}
        self._written: dict[str, tuple[int, int]] = {}
        """Per key: (day, count) already in the database, from loading or from our own writes."""
        self._dirty: set[str] = set()

    async def hit(self, key_id: str, limits: Limits, now: float) -> Decision:
        window = self._windows.get(key_id)
        if window is None:
            window = self._windows[key_id] = deque()
        cutoff = now - WINDOW
        while window and window[0] <= cutoff:
            window.popleft()
        day = utc_day(now)
        stored = self._daily.get(key_id)
        used = stored[1] if stored is not None and stored[0] == day else 0
        allowed = len(window) < limits.per_second and used < limits.daily
        if allowed:
            window.append(now)
            used += 1
            self._daily[key_id] = (day, used)
            self._dirty.add(key_id)
        # When full, the request at this index must leave the window before another one fits.
        index = max(0, len(window) - limits.per_second)
        second_reset = window[index] + WINDOW - now if window else 0.0
        return Decision(
            allowed=allowed,
            limits=limits,
            second_remaining=max(0, limits.per_second - len(window)),
            second_reset=max(0.0, second_reset),
            daily_remaining=max(0, limits.daily - used),
            daily_reset=seconds_to_midnight(now),
        )

    def _unwritten(self, key_id: str) -> tuple[int, int]:
        day, used = self._daily[key_id]
        written_day, written = self._written.get(key_id, (day, 0))
        return day, used - (written if written_day == day else 0)

    def dirty_daily(self) -> list[tuple[str, int, int]]:
        """(key id, UTC day number, requests not yet written) of every key counted since its last write."""
        rows = [(key_id, *self._unwritten(key_id)) for key_id in self._dirty if key_id in self._daily]
        return [row for row in rows if row[2] > 0]

    def mark_written(self, rows: Iterable[tuple[str, int, int]]) -> None:
        """After the transaction with ``rows`` committed: those requests are in the database now."""
        for key_id, day, added in rows:
            written_day, written = self._written.get(key_id, (day, 0))
            self._written[key_id] = (day, (written if written_day == day else 0) + added)
            if key_id in self._daily and self._unwritten(key_id)[1] <= 0:
                self._dirty.discard(key_id)

    def load_daily(self, rows: Iterable[tuple[str, int, int]]) -> None:
        """Restores persisted counts at startup: they count against the quota and are already written."""
        for key_id, day, count in rows:
            current = self._daily.get(key_id)
            if current is None or current[0] < day:
                self._daily[key_id] = self._written[key_id] = (day, count)

    def sweep(self, now: float) -> None:
        """Drops empty windows and counters of past days, so idle keys cost no memory."""
        cutoff = now - WINDOW
        for key_id in [k for k, w in self._windows.items() if not w or w[-1] <= cutoff]:
            del self._windows[key_id]
        today = utc_day(now)
        for key_id in [k for k, (day, _) in self._daily.items() if day < today and k not in self._dirty]:
            del self._daily[key_id]
            self._written.pop(key_id, None)

    async def aclose(self) -> None:
        return None
