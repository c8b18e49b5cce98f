"""Concurrent executions per key and per organization, in this process: past either cap, 429.

Every execution holds a slot from before its tool starts until it ends, whether the caller waits
for it or it runs in the background.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from auth.errors import RateLimited


class TooManyExecutions(RateLimited):
    code = "too_many_executions"

    def __init__(self, what: str, limit: int) -> None:
        super().__init__(f"Too many running executions for this {what} (limit {limit})", headers={"Retry-After": "1"})


@dataclass
class ExecutionSlots:
    per_key: int
    per_organization: int
    _keys: dict[str, int] = field(default_factory=dict)
    _organizations: dict[str, int] = field(default_factory=dict)

    def running(self, *, key_id: str | None = None, organization_id: str | None = None) -> int:
        if key_id is not None:
            return self._keys.get(key_id, 0)
        return self._organizations.get(organization_id or "", 0)

    def take(self, key_id: str, organization_id: str) -> None:
        if self._keys.get(key_id, 0) >= self.per_key:
            raise TooManyExecutions("API key", self.per_key)
        if self._organizations.get(organization_id, 0) >= self.per_organization:
            raise TooManyExecutions("organization", self.per_organization)
        self._keys[key_id] = self._keys.get(key_id, 0) + 1
        self._organizations[organization_id] = self._organizations.get(organization_id, 0) + 1

    def give_back(self, key_id: str, organization_id: str) -> None:
        for counts, name in ((self._keys, key_id), (self._organizations, organization_id)):
            left = counts.get(name, 0) - 1
            if left > 0:
                counts[name] = left
            else:
                counts.pop(name, None)

    def acquire(self, key_id: str, organization_id: str) -> Slot:
        self.take(key_id, organization_id)
        return Slot(self, key_id, organization_id)


@dataclass
class Slot:
    """One execution's place; ``release`` is idempotent. A background execution takes it along."""

    slots: ExecutionSlots
    key_id: str
    organization_id: str
    handed_off: bool = False
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.slots.give_back(self.key_id, self.organization_id)
