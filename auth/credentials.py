"""Finding the API key in a request's headers (never in its query string)."""

from __future__ import annotations

from collections.abc import Iterable

from auth.errors import ConflictingCredentials, InvalidApiKey, MissingApiKey

_AUTHORIZATION = b"authorization"
_X_API_KEY = b"x-api-key"


def extract_api_key(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The one key the request presents, from ``Authorization: Bearer`` or ``x-api-key``.

    Raises MissingApiKey when there is none, ConflictingCredentials when the request
    presents two different keys, and InvalidApiKey for an Authorization header of
    another scheme with no key beside it.
    """
    candidates: set[str] = set()
    other_scheme = False
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        if name == _X_API_KEY:
            value = raw_value.decode("latin-1").strip()
            if value:
                candidates.add(value)
        elif name == _AUTHORIZATION:
            scheme, _, token = raw_value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer":
                token = token.strip()
                if token:
                    candidates.add(token)
            elif scheme:
                other_scheme = True
    if len(candidates) > 1:
        raise ConflictingCredentials()
    if candidates:
        return candidates.pop()
    if other_scheme:
        raise InvalidApiKey()
    raise MissingApiKey()
