"""HTTP Basic sign-in of a user (email and password) for POST /api-keys.

Unknown email and wrong password take the same path: argon2 runs against the user's
hash or, when there is no such user, against a dummy hash made with the same
parameters, and both answer the same 401. Attempts are counted per email (known or
not, so the limit reveals nothing either) and per source address; past a limit the
caller gets 429 with Retry-After without argon2 running, until the window ends.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread

from auth.attempts import AttemptBudget
from auth.errors import CapgateError, RateLimited
from auth.hashing import SecretHasher
from auth.models import User

BASIC_CHALLENGE = 'Basic realm="capgate", charset="UTF-8"'
UserLoader = Callable[[str], Awaitable[User | None]]


class InvalidCredentials(CapgateError):
    status = 401
    code = "invalid_credentials"
    message = "Invalid email or password"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": BASIC_CHALLENGE}


class MissingCredentials(InvalidCredentials):
    code = "missing_credentials"
    message = "Missing HTTP Basic credentials (email and password)"


class MalformedCredentials(InvalidCredentials):
    code = "malformed_credentials"
    message = "Malformed HTTP Basic authorization header"


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    email: str
    password: str

    def __repr__(self) -> str:
        return f"BasicCredentials(email={self.email!r})"


def parse_basic(headers: list[tuple[bytes, bytes]]) -> BasicCredentials:
    values = [value for name, value in headers if name.lower() == b"authorization"]
    if not values:
        raise MissingCredentials()
    if len(values) > 1:
        raise MalformedCredentials()
    scheme, _, encoded = values[0].decode("latin-1").strip().partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        raise MalformedCredentials()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise MalformedCredentials() from None
    email, colon, password = decoded.partition(":")
    if not colon or not email.strip() or not password:
        raise MalformedCredentials()
    return BasicCredentials(email=email.strip().lower(), password=password)


class PasswordAuthenticator:
    """Checks passwords with bounded argon2 work (DESIGN §4; issue 14 item 4, issue 18 item 8).

    - per email: at most ``failure_limit`` failed attempts per window, counted *before* argon2
      runs, so guesses that arrive together cannot overshoot;
    - per source address: at most ``source_failure_limit`` failed attempts per window, and its
      attempts run one at a time with at most ``max_pending_per_source`` waiting, so one address
      holds at most one argon2 slot and cannot queue ahead of everyone else;
    - overall: at most ``max_pending`` verifications waiting or running.

    Anything beyond that is answered 429 with Retry-After at once, never after a long wait.
    """

    def __init__(
        self,
        *,
        load_user: UserLoader,
        hasher: SecretHasher,
        failure_limit: int,
        window: float,
        source_failure_limit: int = 50,
        max_pending_per_source: int = 4,
        max_pending: int = 64,
        max_concurrency: int = 2,
        monotonic: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
    ) -> None:
        self._load_user = load_user
        self._hasher = hasher
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(24))
        self._per_email: AttemptBudget[str] = AttemptBudget(
            limit=failure_limit, window=window, monotonic=monotonic, max_tracked=max_tracked
        )
        self._per_source: AttemptBudget[str] = AttemptBudget(
            limit=source_failure_limit, window=window, monotonic=monotonic, max_tracked=max_tracked
        )
        self._max_pending_per_source = max_pending_per_source
        self._max_pending = max_pending
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._queues: dict[str, tuple[anyio.Lock, int]] = {}
        self._pending = 0
        self.argon2_runs = 0

    async def authenticate(self, credentials: BasicCredentials, *, source: str | None = None) -> User:
        email, origin = credentials.email, source or ""
        self._admit(email, origin)
        lock, waiting = self._queues.get(origin) or (anyio.Lock(), 0)
        self._queues[origin] = (lock, waiting + 1)
        self._pending += 1
        try:
            async with lock:
                user = await self._load_user(email)
                stored = user.password_hash if user is not None else self._dummy_hash
                self.argon2_runs += 1
                ok = await anyio.to_thread.run_sync(
                    self._hasher.verify, stored, credentials.password, limiter=self._limiter
                )
        finally:
            self._pending -= 1
            lock, waiting = self._queues[origin]
            if waiting <= 1:
                del self._queues[origin]
            else:
                self._queues[origin] = (lock, waiting - 1)
        if user is None or not ok:
            raise InvalidCredentials()  # the reservations made in _admit stay: they are the failures
        self._per_email.reset(email)
        self._per_source.give_back(origin)
        return user

    def _admit(self, email: str, origin: str) -> None:
        """Reserves the attempt against both budgets, or raises 429."""
        waiting = self._queues.get(origin, (None, 0))[1]
        if self._pending >= self._max_pending or waiting >= self._max_pending_per_source:
            raise RateLimited("Too many sign-ins waiting; try again shortly", headers={"Retry-After": "1"})
        retry = self._per_email.reserve(email)
        if retry is not None:
            raise RateLimited("Too many failed sign-ins for this email", headers={"Retry-After": str(retry)})
        retry = self._per_source.reserve(origin)
        if retry is not None:
            self._per_email.give_back(email)
            raise RateLimited("Too many failed sign-ins from this address", headers={"Retry-After": str(retry)})
