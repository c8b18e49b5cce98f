"""What a creator may hand on: a key never gets more than whoever creates or changes it may do."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from auth.errors import CapgateError
from auth.scopes import (
    INTEGRATIONS_MANAGE,
    KEYS_MANAGE,
    KNOWN_SCOPES,
    METRICS_READ,
    RUNTIME,
    RUNTIME_READ,
    WILDCARD,
)

OPERATOR_SCOPES = frozenset({WILDCARD, METRICS_READ})
_ROLE_SCOPES: dict[str, frozenset[str]] = {
    "member": frozenset({RUNTIME, RUNTIME_READ}),
    "admin": frozenset({RUNTIME, RUNTIME_READ, KEYS_MANAGE, INTEGRATIONS_MANAGE}),
    "owner": frozenset({RUNTIME, RUNTIME_READ, KEYS_MANAGE, INTEGRATIONS_MANAGE}),
}
_KEY_SCOPE_GRANTS: dict[str, frozenset[str]] = {
    RUNTIME: frozenset({RUNTIME, RUNTIME_READ}),
    RUNTIME_READ: frozenset({RUNTIME_READ}),
    KEYS_MANAGE: frozenset({KEYS_MANAGE}),
    INTEGRATIONS_MANAGE: frozenset({INTEGRATIONS_MANAGE}),
    WILDCARD: frozenset({RUNTIME, RUNTIME_READ, KEYS_MANAGE, INTEGRATIONS_MANAGE}),
}


class NotGrantable(CapgateError):
    status = 403
    code = "insufficient_scope"

    def headers(self) -> dict[str, str]:
        # DESIGN §3: every 403 carries the Bearer insufficient_scope challenge.
        return {"WWW-Authenticate": 'Bearer error="insufficient_scope"', **self.extra_headers}


@dataclass(frozen=True, slots=True)
class Rights:
    """Scopes one may grant over HTTP, and the tool patterns one is limited to (None: not limited)."""

    scopes: frozenset[str]
    allowed_tools: tuple[str, ...] | None = None

    @classmethod
    def of_role(cls, role: str) -> Rights:
        return cls(scopes=_ROLE_SCOPES.get(role, frozenset()))

    @classmethod
    def of_key(cls, scopes: Collection[str], allowed_tools: Sequence[str] | None) -> Rights:
        granted: set[str] = set()
        for scope in scopes:
            granted |= _KEY_SCOPE_GRANTS.get(scope, frozenset())
        return cls(scopes=frozenset(granted), allowed_tools=tuple(allowed_tools) if allowed_tools is not None else None)


def check_grant(rights: Rights, scopes: Sequence[str], allowed_tools: Sequence[str] | None) -> None:
    """Raises NotGrantable (403 insufficient_scope) when the key would get more than ``rights``.

    Compares the scopes as the data functions will store them; unknown ones are theirs to refuse (400).
    """
    requested = [scope.strip() for scope in scopes if scope.strip() in KNOWN_SCOPES]
    for scope in requested:
        if scope in OPERATOR_SCOPES:  # process-wide: /metrics counts every organization's traffic
            raise NotGrantable(f"Scope {scope} can only be granted from the CLI")
    for scope in requested:
        if scope not in rights.scopes:
            raise NotGrantable(f"Not allowed to grant scope: {scope}")
    if rights.allowed_tools is not None:
        if allowed_tools is None:
            raise NotGrantable("Not allowed to grant tools beyond your own allowedTools")
        for pattern in allowed_tools:
            if pattern not in rights.allowed_tools:
                raise NotGrantable(f"Not allowed to grant tool pattern: {pattern}")


class KeyReplaced(NotGrantable):
    code = "key_replaced"


def check_still_manager(replaced: bool) -> None:
    """A key replaced by rotation works for runtime use through its overlap but manages nothing:
    a leaked key that was rotated away must not mint keys that outlive it."""
    if replaced:
        raise KeyReplaced("A key replaced by rotation cannot manage keys; use its successor")


def check_revocable(rights_scopes: Collection[str], target_scopes: Sequence[str]) -> None:
    """Revoking needs no rights beyond keys:manage, except for an operator (``*``) key."""
    if WILDCARD in target_scopes and WILDCARD not in rights_scopes:
        raise NotGrantable("Only a key with scope * may revoke a key with scope *")


def inherit_allowed_tools(rights: Rights, requested: Sequence[str] | None) -> list[str] | None:
    """A creator limited to some tools hands that limit on when the request names none."""
    if requested is None and rights.allowed_tools is not None:
        return list(rights.allowed_tools)
    return list(requested) if requested is not None else None


def check_manageable(rights: Rights, scopes: Sequence[str], allowed_tools: Sequence[str] | None) -> None:
    """Changing or rotating a key is granting its rights again: the caller must hold them."""
    try:
        check_grant(rights, scopes, allowed_tools)
    except NotGrantable:
        raise NotGrantable("Not allowed to change a key that has rights you do not have") from None
