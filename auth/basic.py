"""HTTP Basic sign-in of a user (email and password) for POST /api-keys.

Unknown email and wrong password take the same path: argon2 runs against the user's
hash or, when there is no such user, against a dummy hash made with the same
parameters, and both answer the same 401. Wrong passwords are counted per email (known
or not, so the limit reveals nothing either); past ``failure_limit`` in ``window``
seconds the email gets 429 without argon2 running, until the window ends.
"""

from __future__ import annotations

import base64
import binascii
import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import anyio.to_thread

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
    def __init__(
        self,
        *,
        load_user: UserLoader,
        hasher: SecretHasher,
        failure_limit: int,
        window: float,
        max_concurrency: int = 2,
        monotonic: Callable[[], float] = time.monotonic,
        max_tracked: int = 100_000,
    ) -> None:
        self._load_user = load_user
        self._hasher = hasher
        self._dummy_hash = hasher.hash(secrets.token_urlsafe(24))
        self._failure_limit = failure_limit
        self._window = window
        self._limiter = anyio.CapacityLimiter(max_concurrency)
        self._monotonic = monotonic
        self._max_tracked = max_tracked
        self._failures: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self.argon2_runs = 0

    async def authenticate(self, credentials: BasicCredentials) -> User:
        self._check_not_throttled(credentials.email)
        user = await self._load_user(credentials.email)
        stored = user.password_hash if user is not None else self._dummy_hash
        self.argon2_runs += 1
        ok = await anyio.to_thread.run_sync(self._hasher.verify, stored, credentials.password, limiter=self._limiter)
        if user is None or not ok:
            self._count_failure(credentials.email)
            raise InvalidCredentials()
        self._failures.pop(credentials.email, None)
        return user

    def _check_not_throttled(self, email: str) -> None:
        entry = self._failures.get(email)
        if entry is None:
            return
        started, count = entry
        elapsed = self._monotonic() - started
        if elapsed >= self._window:
            del self._failures[email]
        elif count >= self._failure_limit:
            retry = max(1, math.ceil(self._window - elapsed))
            raise RateLimited("Too many failed sign-ins for this email", headers={"Retry-After": str(retry)})

    def _count_failure(self, email: str) -> None:
        started, count = self._failures.get(email, (self._monotonic(), 0))
        self._failures[email] = (started, count + 1)
        self._failures.move_to_end(email)
        while len(self._failures) > self._max_tracked:
            self._failures.popitem(last=False)
