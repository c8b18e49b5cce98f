"""Scopes a key may carry, and what each grants."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from auth.errors import InvalidRequest

RUNTIME = "runtime"
RUNTIME_READ = "runtime:read"
KEYS_MANAGE = "keys:manage"
INTEGRATIONS_MANAGE = "integrations:manage"
METRICS_READ = "metrics:read"
WILDCARD = "*"

KNOWN_SCOPES: tuple[str, ...] = (RUNTIME, RUNTIME_READ, KEYS_MANAGE, INTEGRATIONS_MANAGE, METRICS_READ, WILDCARD)
# A key with any of these may use the route that requires the key of the mapping.
_SATISFIED_BY: dict[str, frozenset[str]] = {
    RUNTIME: frozenset({RUNTIME, RUNTIME_READ, WILDCARD}),
    KEYS_MANAGE: frozenset({KEYS_MANAGE, WILDCARD}),
    INTEGRATIONS_MANAGE: frozenset({INTEGRATIONS_MANAGE, WILDCARD}),
    METRICS_READ: frozenset({METRICS_READ, WILDCARD}),
}


class UnknownScope(ValueError):
    def __init__(self, scope: str) -> None:
        self.scope = scope
        super().__init__(f"Unknown scope: {scope!r} (known: {', '.join(KNOWN_SCOPES)})")


def normalise_scopes(scopes: Iterable[str]) -> list[str]:
    """Known scopes, deduplicated in order; raises UnknownScope for anything else."""
    result: list[str] = []
    for scope in scopes:
        scope = scope.strip()
        if scope not in KNOWN_SCOPES:
            raise UnknownScope(scope)
        if scope not in result:
            result.append(scope)
    return result


def clean_scopes(scopes: Iterable[str]) -> list[str]:
    """The scopes as stored: known, stripped, deduplicated, at least one; 400 ``invalid_request`` otherwise.
    The data functions apply it themselves (create and update alike); routes and CLI only authorise."""
    try:
        cleaned = normalise_scopes(scopes)
    except UnknownScope as exc:
        raise InvalidRequest(str(exc), details={"scopes": str(exc)}) from exc
    if not cleaned:
        raise InvalidRequest("A key needs at least one scope", details={"scopes": "must not be empty"})
    return cleaned


def grants(held: Collection[str], required: str) -> bool:
    return not _SATISFIED_BY.get(required, frozenset({required, WILDCARD})).isdisjoint(held)


def granting_scope(held: Collection[str], required: str) -> str | None:
    """The scope of ``held`` that satisfies ``required`` (for decision records), or None."""
    satisfying = _SATISFIED_BY.get(required, frozenset({required, WILDCARD}))
    return next((scope for scope in held if scope in satisfying), None)


def is_read_only(held: Collection[str]) -> bool:
    """True when the key's runtime access is limited to read-only tools."""
    return RUNTIME_READ in held and RUNTIME not in held and WILDCARD not in held
