"""The Redis rate-limit backend: the same two windows, shared by every replica.

One Lua script per request (EVALSHA: one round trip) trims the key's sliding-window
sorted set, checks both windows and, only when both have room, records the request in
both. Redis runs scripts atomically, so concurrent replicas can never admit more than
the limit together.

The time comes from the calling replica's clock, not from Redis ``TIME``: one code
path for tests with an injected clock and production. Replicas must therefore keep
their clocks in sync (NTP); a skew of d ms lets at most about ``per_second * d / 1000``
extra requests through a window.
"""

from __future__ import annotations

import itertools
import secrets

from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth.ratelimit import SECONDS_PER_DAY, BackendUnavailable, Decision, Limits, seconds_to_midnight, utc_day

# KEYS[1]: the key's sliding-window sorted set; KEYS[2]: its counter for the UTC day.
# ARGV: now (ms), per-second limit, daily quota, unique member, counter lifetime (s).
# The window set expires by Redis's own clock; 60 s (not 1 s) so that a writer whose clock differs from
# Redis's, or a test's injected clock, never sees its window vanish early. ZREMRANGEBYSCORE keeps it small.
# Returns {admitted 0/1, requests in window, requests today, score (ms) of the entry that must expire first}.
SCRIPT = """
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1000)
local in_window = redis.call('ZCARD', KEYS[1])
local used = tonumber(redis.call('GET', KEYS[2]) or '0')
local admitted = 0
if in_window < limit and used < quota then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], 60000)
  used = redis.call('INCR', KEYS[2])
  if used == 1 then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
  in_window = in_window + 1
  admitted = 1
end
local index = in_window - limit
if index < 0 then index = 0 end
local entry = redis.call('ZRANGE', KEYS[1], index, index, 'WITHSCORES')
local first = 0
if entry[2] then first = entry[2] end
return {admitted, in_window, used, tostring(first)}
"""


class RedisBackend:
    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix
        self._script = redis.register_script(SCRIPT)
        self._instance = secrets.token_hex(4)
        self._counter = itertools.count()

    async def hit(self, key_id: str, limits: Limits, now: float) -> Decision:
        now_ms = now * 1000.0
        day = utc_day(now)
        # The hash tag keeps both keys of one API key in one Redis Cluster slot.
        keys = [f"{self._prefix}:rl:{{{key_id}}}:s", f"{self._prefix}:rl:{{{key_id}}}:d:{day}"]
        member = f"{now_ms:.3f}:{self._instance}:{next(self._counter)}"
        try:
            admitted, in_window, used, first = await self._script(
                keys=keys, args=[repr(now_ms), limits.per_second, limits.daily, member, 2 * SECONDS_PER_DAY]
            )
        except RedisError as exc:
            raise BackendUnavailable(str(exc)) from exc
        first_ms = float(first)
        second_reset = (first_ms + 1000.0 - now_ms) / 1000.0 if first_ms else 0.0
        return Decision(
            allowed=bool(admitted),
            limits=limits,
            second_remaining=max(0, limits.per_second - int(in_window)),
            second_reset=max(0.0, second_reset),
            daily_remaining=max(0, limits.daily - int(used)),
            daily_reset=seconds_to_midnight(now),
        )

    async def add_daily(self, counts: dict[tuple[str, int], int]) -> None:
        """Adds requests admitted while Redis was unreachable to the keys' day counters."""
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for (key_id, day), count in counts.items():
                    name = f"{self._prefix}:rl:{{{key_id}}}:d:{day}"
                    pipe.incrby(name, count)
                    pipe.expire(name, 2 * SECONDS_PER_DAY)
                await pipe.execute()
        except RedisError as exc:
            raise BackendUnavailable(str(exc)) from exc

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except RedisError as exc:
            raise BackendUnavailable(str(exc)) from exc

    async def aclose(self) -> None:
        await self._redis.aclose()
