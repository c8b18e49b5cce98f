"""Key verification, cheapest first (DESIGN §4).

1. parse and checksum: no I/O;
2. key id lookup: in-process record cache, then the database;
3. verified-key cache: HMAC(pepper, key) against the digest cached at the last success;
4. argon2 in a worker thread, at most ``max_concurrency`` at once, one run per distinct
   presented key even when many requests bring it at the same moment.

Wrong secrets are bounded per source address, never per key id alone (issue 14 item 3):
the same wrong key is answered from memory; after ``failure_limit`` distinct wrong
secrets for one id *from one address* argon2 no longer runs for that pair until the
window ends; and one address gets at most ``source_failure_limit`` failed argon2 runs
per window over all ids (then 429 with Retry-After). Attempts are reserved before argon2
runs, so a burst cannot overshoot. Knowing a key id therefore lets an attacker spend a
bounded amount of argon2 and refuse only itself: the holder of the right secret, from
another address, is always verified.
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

from auth.attempts import AttemptBudget
from auth.dbtypes import utcnow
from auth.errors import ExpiredApiKey, InvalidApiKey, RateLimited, RevokedApiKey
from auth.hashing import SecretHasher, peppered_digest
from auth.keys import parse_key
from auth.loads import LoadGuard
from auth.observer import NULL_OBSERVER, AuthObserver
from auth.records import KeyRecord

RecordLoader = Callable[[str], Awaitable[KeyRecord | None]]
HashSaver = Callable[[str, str], Awaitable[None]]
K = TypeVar("K")
V = TypeVar("V")


@dataclass(slots=True)
class VerifierStats:
    argon2_runs: int = 0
    checksum_rejections: int = 0
    unknown_ids: int = 0
    record_loads: int = 0
    throttled: int = 0


@dataclass(slots=True)
class _Failures:
    window_started: float
    digests: set[bytes] = field(default_factory=set)


Source = str | None


class LRU(Generic[K, V]):
    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def __contains__(self, key: K) -> bool:
        return key in self._items


def standing(record: KeyRecord, now: datetime) -> RevokedApiKey | ExpiredApiKey | None:
    """Why a key that exists may not be used now (revoked, expired), with the rule for the decision record."""
    refusal: RevokedApiKey | ExpiredApiKey
    if record.revoked_at is not None:
        refusal = RevokedApiKey()
        refusal.rule = f"key revoked at {record.revoked_at.isoformat()}"
    elif record.expires_at is not None and record.expires_at <= now:
        refusal = ExpiredApiKey()
        refusal.rule = f"key expired at {record.expires_at.isoformat()}"
    else:
        return None
    refusal.decided_for = (record.key_id, record.organization_id, record.policy_revision)
    return refusal


class KeyVerifier:
    def __init__(
        self,
        *,
        load_record: RecordLoader,
        save_rehashed: HashSaver | None = None,
        hasher: SecretHasher,
        pepper: bytes,
        max_concurrency: int = 2,
        record_ttl: float = 30.0,
        cache_size: int = 10_000,
        failure_limit: int = 5,
        failure_window: float = 60.0,
        source_failure_limit: int = 50,
        monotonic: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utcnow,
        observer: AuthObserver = NULL_OBSERVER,
    ) -> None:
        self.observer = observer
        self._load_record = load_record
        self._save_rehashed = save_rehashed
        self._hasher = hasher
        self._pepper = pepper
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._record_ttl = record_ttl
        self._records: LRU[str, tuple[float, KeyRecord | None]] = LRU(cache_size)
        self._verified: LRU[str, bytes] = LRU(cache_size)
        self._failures: LRU[tuple[str, Source], _Failures] = LRU(cache_size)
        self._per_id: AttemptBudget[tuple[str, Source]] = AttemptBudget(
            limit=failure_limit, window=failure_window, monotonic=monotonic, max_tracked=cache_size
        )
        self._per_source: AttemptBudget[Source] = AttemptBudget(
            limit=source_failure_limit, window=failure_window, monotonic=monotonic, max_tracked=cache_size
        )
        self._in_flight: dict[bytes, asyncio.Future[bool]] = {}
        self._loads: LoadGuard[str] = LoadGuard()
        self._failure_window = failure_window
        self._monotonic = monotonic
        self._now = now
        self.stats = VerifierStats()

    async def verify(self, presented: str, *, source: Source = None) -> KeyRecord:
        """The key's record, or an AuthenticationError subclass (or 429) saying why not."""
        parsed = parse_key(presented)
        if parsed is None:
            self.stats.checksum_rejections += 1
            raise InvalidApiKey()
        record = await self._record(parsed.key_id)
        if record is None:
            self.stats.unknown_ids += 1
            raise InvalidApiKey()
        digest = peppered_digest(self._pepper, parsed.raw)
        cached = self._verified.get(record.key_id)
        fresh = cached is None or not hmac.compare_digest(cached, digest)
        if fresh:
            self.observer.key_cache("verified", hit=False)
            await self._verify_secret(record, digest, parsed.raw, source)
        else:
            self.observer.key_cache("verified", hit=True)
        # Only a caller holding the right secret learns that the key is revoked or expired.
        refusal = standing(record, self._now())
        if refusal is not None:
            raise refusal
        if fresh:  # after the checks: a key that may not be used gets no write
            await self._rehash_if_outdated(record, parsed.raw)
        return record

    async def _verify_secret(self, record: KeyRecord, digest: bytes, raw: str, source: Source) -> None:
        pair = (record.key_id, source)
        failures = self._failures.get(pair)
        if failures is not None and self._monotonic() - failures.window_started > self._failure_window:
            self._failures.pop(pair)
            failures = None
        if failures is not None and digest in failures.digests:
            self.stats.throttled += 1
            raise InvalidApiKey()
        reserved = digest not in self._in_flight  # joining a run already counted costs nothing
        if reserved:
            self._reserve(pair)
        if not await self._argon2_once(record.key_hash, digest, raw):
            failures = self._failures.get(pair) or _Failures(window_started=self._monotonic())
            failures.digests.add(digest)
            self._failures.put(pair, failures)
            raise InvalidApiKey()
        self._verified.put(record.key_id, digest)
        self._failures.pop(pair)
        if reserved:
            self._per_id.reset(pair)
            self._per_source.give_back(source)

    async def _rehash_if_outdated(self, record: KeyRecord, raw: str) -> None:
        if self._save_rehashed is not None and self._hasher.needs_rehash(record.key_hash):
            new_hash = await anyio.to_thread.run_sync(self._hasher.hash, raw, limiter=self._limiter)
            await self._save_rehashed(record.key_id, new_hash)

    def _reserve(self, pair: tuple[str, Source]) -> None:
        """Counts an argon2 run against the id-and-address and the address budgets, or refuses it."""
        if self._per_id.reserve(pair) is not None:
            self.stats.throttled += 1
            raise InvalidApiKey()
        retry = self._per_source.reserve(pair[1])
        if retry is not None:
            self._per_id.give_back(pair)
            self.stats.throttled += 1
            raise RateLimited("Too many wrong API keys from this address", headers={"Retry-After": str(retry)})

    async def _argon2_once(self, key_hash: str, digest: bytes, raw: str) -> bool:
        """Concurrent requests with the same key share one argon2 run."""
        pending = self._in_flight.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._in_flight[digest] = future
        self.observer.argon2_waiting(1)
        try:
            self.stats.argon2_runs += 1
            ok = await anyio.to_thread.run_sync(self._hasher.verify, key_hash, raw, limiter=self._limiter)
            self.observer.argon2_verified(ok)
            future.set_result(ok)
            return ok
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must warn about it
            raise
        finally:
            self.observer.argon2_waiting(-1)
            del self._in_flight[digest]

    async def _record(self, key_id: str) -> KeyRecord | None:
        cached = self._records.get(key_id)
        if cached is not None and self._monotonic() - cached[0] < self._record_ttl:
            self.observer.key_cache("record", hit=True)
            return cached[1]
        self.observer.key_cache("record", hit=False)
        self.stats.record_loads += 1
        token = self._loads.start(key_id)
        try:
            record = await self._load_record(key_id)
        except BaseException:
            self._loads.finish(key_id, token)
            raise
        if self._loads.finish(key_id, token):
            self._records.put(key_id, (self._monotonic(), record))
        return record

    def refresh(self, record: KeyRecord) -> None:
        """Replace a cached record with a newer one from the change feed; keys not in use stay uncached."""
        self._loads.invalidate(record.key_id)
        cached = self._records.get(record.key_id)
        if cached is not None and (cached[1] is None or cached[1].updated_at != record.updated_at):
            self._records.put(record.key_id, (self._monotonic(), record))

    def reload(self, key_id: str) -> None:
        """The key's row changed elsewhere: the next request re-reads it (its verified secret stays cached)."""
        self._loads.invalidate(key_id)
        self._records.pop(key_id)

    def forget(self, key_id: str) -> None:
        """Drop everything cached for the key: the next request reloads it from the database."""
        self._loads.invalidate(key_id)
        self._records.pop(key_id)
        self._verified.pop(key_id)
