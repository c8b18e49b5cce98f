"""A circuit breaker per connected account: after ``threshold`` consecutive failures the account's calls
fail fast for ``cooldown`` seconds; then one call is let through, and its outcome closes or re-opens it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float | None = None
    trial_running: bool = False


class CircuitBreaker:
    def __init__(self, *, threshold: int, cooldown: float, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self.clock = clock
        self._states: dict[str, _State] = {}

    def retry_after(self, account_id: str) -> float | None:
        """None when a call may go ahead (and, after a cool-down, marks it as the trial call)."""
        state = self._states.get(account_id)
        if state is None or state.open_until is None:
            return None
        now = self.clock()
        if now < state.open_until:
            return state.open_until - now
        if state.trial_running:
            return self.cooldown
        state.trial_running = True
        return None

    def succeeded(self, account_id: str) -> bool:
        """Records a success; True when this closed an open breaker."""
        state = self._states.pop(account_id, None)
        return state is not None and state.open_until is not None

    def failed(self, account_id: str) -> bool:
        """Records a failure; True when this opened the breaker (or re-opened it after a failed trial)."""
        state = self._states.setdefault(account_id, _State())
        state.failures += 1
        state.trial_running = False
        if state.failures >= self.threshold:
            was_open = state.open_until is not None
            state.open_until = self.clock() + self.cooldown
            return not was_open
        return False

    def forget(self, account_id: str) -> None:
        self._states.pop(account_id, None)

    def backoff(self, account_id: str, base: float) -> float:
        """How long to wait before reconnecting after consecutive failures (0 after a success)."""
        state = self._states.get(account_id)
        if state is None or state.failures == 0 or state.open_until is not None:
            return 0.0
        return float(min(base * 2 ** (state.failures - 1), self.cooldown))
