"""The one decision whether a key may use a tool, and the rule that decided it.

The registry's listing, the runtime's call path and ``capgate keys explain`` all ask this
function, so what a key is told it may do and what it can do cannot drift apart.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from auth import scopes as scope_names

ALLOWED = "allowed"
UNKNOWN_TOOL = "unknown_tool"
TOOL_NOT_GRANTED = "tool_not_granted"
TOOL_DISABLED = "tool_disabled"


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether, why (a reason code) and which rule decided (``rule_parts`` are joined only when read)."""

    allowed: bool
    reason: str
    rule_parts: tuple[str, ...]

    @property
    def rule(self) -> str:
        return "; ".join(self.rule_parts)


def _matching_pattern(name: str, patterns: Sequence[str]) -> str | None:
    return next((pattern for pattern in patterns if fnmatch.fnmatchcase(name, pattern)), None)


def grant_verdict(
    *,
    tool_name: str,
    tool_scope: str,
    tool_read_only: bool,
    key_scopes: Collection[str],
    allowed_tools: Sequence[str] | None,
    disabled: Collection[str] = (),
) -> Verdict:
    """The decision for a tool that exists: scope, read-only limit, allowedTools globs, organization switch."""
    if not scope_names.grants(key_scopes, tool_scope):
        rule = f"tool needs scope {tool_scope}; key has {', '.join(sorted(key_scopes)) or 'no scope'}"
        return Verdict(False, TOOL_NOT_GRANTED, (rule,))
    if scope_names.is_read_only(key_scopes) and not tool_read_only:
        return Verdict(
            False, TOOL_NOT_GRANTED, (f"scope {scope_names.RUNTIME_READ} lacks write: tool is not read-only",)
        )
    held = scope_names.WILDCARD if scope_names.WILDCARD in key_scopes else tool_scope
    parts = [f"scope {held} grants {'read-only tools' if scope_names.is_read_only(key_scopes) else 'the tool'}"]
    if allowed_tools is not None:
        pattern = _matching_pattern(tool_name, allowed_tools)
        if pattern is None:
            listed = ", ".join(allowed_tools) or "none"
            return Verdict(False, TOOL_NOT_GRANTED, (f"allowedTools [{listed}] match no pattern for the tool",))
        parts.append(f"allowedTools glob {pattern} matched")
    if tool_name in disabled:
        return Verdict(False, TOOL_DISABLED, ("tool disabled for the organization",))
    return Verdict(True, ALLOWED, tuple(parts))


def unknown_tool_verdict() -> Verdict:
    return Verdict(False, UNKNOWN_TOOL, ("no such tool is registered",))
