"""A request one replica relays to another (a legacy MCP session's owner) carries a mark the owner can trust.

The receiving replica already counted the request toward the key's rate limit; the owner must not
count it again. The mark is ``<unix seconds>.<hex HMAC-SHA256>`` over method, raw path, session id
and that time, keyed by a key derived from the server pepper (which every replica shares and no
client knows). The owner believes it only when the HMAC matches and the time is within
``MAX_SKEW_SECONDS`` of its own clock; a forged or stale mark is ignored and the request counts
like any other.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable

from starlette.types import Scope

RELAY_SIGNATURE = b"capgate-relay-signature"
MAX_SKEW_SECONDS = 30


def _header(scope: Scope, name: bytes) -> bytes | None:
    return next((value for key, value in scope["headers"] if key == name), None)


def _raw_path(scope: Scope) -> bytes:
    raw: bytes | None = scope.get("raw_path")
    return raw if raw is not None else str(scope["path"]).encode()


class RelaySigner:
    def __init__(self, pepper: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = hmac.new(pepper, b"capgate relayed request v1", hashlib.sha256).digest()
        self._clock = clock

    def _mac(self, method: str, path: bytes, session_id: bytes, at: int) -> str:
        message = b"\n".join((method.encode(), path, session_id, str(at).encode()))
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def sign(self, scope: Scope) -> bytes:
        """The mark for relaying this request (its method, raw path and ``Mcp-Session-Id``)."""
        at = int(self._clock())
        session_id = _header(scope, b"mcp-session-id") or b""
        return f"{at}.{self._mac(scope['method'], _raw_path(scope), session_id, at)}".encode()

    def relayed(self, scope: Scope) -> bool:
        """Whether this request carries a valid, fresh mark made by a replica sharing the pepper."""
        mark = _header(scope, RELAY_SIGNATURE)
        if mark is None:
            return False
        at_text, _, mac = mark.decode("latin-1").partition(".")
        if not at_text.isdigit() or abs(self._clock() - int(at_text)) > MAX_SKEW_SECONDS:
            return False
        session_id = _header(scope, b"mcp-session-id") or b""
        expected = self._mac(scope["method"], _raw_path(scope), session_id, int(at_text))
        return hmac.compare_digest(expected, mac)
