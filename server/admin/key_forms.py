"""The key forms' choices and how a submitted form becomes the arguments of ``server.key_actions``."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from auth.errors import InvalidRequest
from auth.lifecycle import MAX_KEY_LIFETIME
from auth.models import ApiKey
from server.admin.web import Form
from tools.registry import Tool

EXPIRY_PRESETS = [(7, "7 days"), (30, "30 days"), (90, "90 days"), (180, "180 days"), (365, "1 year")]
DEFAULT_EXPIRY_DAYS = 90
OVERLAP_PRESETS = [(0, "none: the old key stops now"), (3600, "1 hour"), (86_400, "1 day"), (604_800, "7 days")]
DEFAULT_OVERLAP_SECONDS = 86_400
SCOPE_LABELS = {
    "runtime": "runtime: call every tool the key is allowed",
    "runtime:read": "runtime:read: only read-only tools",
    "keys:manage": "keys:manage: create, rotate and revoke keys",
}
_PATTERN_SPLIT = re.compile(r"[\s,]+")


@dataclass(frozen=True, slots=True)
class ToolChoice:
    pattern: str
    label: str
    enabled: bool


def tool_choices(tools: list[Tool], disabled: frozenset[str]) -> list[ToolChoice]:
    """A ``prefix_*`` choice for each family of two or more tools, then every tool by name."""
    prefixes = Counter(tool.name.split("_", 1)[0] for tool in tools if "_" in tool.name)
    families = [
        ToolChoice(f"{prefix}_*", f"{prefix}_* (all {count} {prefix} tools)", enabled=True)
        for prefix, count in sorted(prefixes.items())
        if count > 1
    ]
    singles = [
        ToolChoice(
            tool.name, f"{tool.name}{' (read-only)' if tool.read_only else ''}", enabled=tool.name not in disabled
        )
        for tool in sorted(tools, key=lambda tool: tool.name)
    ]
    return families + singles


def chosen_tools(form: Form) -> list[str] | None:
    """None when the form asks for every tool the scopes allow."""
    if form.get("tools_mode", "all") == "all":
        return None
    patterns = form.getlist("tool") + [p for p in _PATTERN_SPLIT.split(form.get("tool_patterns")) if p]
    if not patterns:
        message = "Pick at least one tool, or allow all tools"
        raise InvalidRequest(message, details={"tool": message})
    return list(dict.fromkeys(patterns))


def chosen_scopes(form: Form) -> list[str]:
    scopes = form.getlist("scope")
    if not scopes:
        raise InvalidRequest("Pick at least one scope", details={"scope": "Pick at least one scope"})
    return scopes


def chosen_expiry(form: Form, now: datetime) -> datetime:
    raw = form.get("expires_in_days", str(DEFAULT_EXPIRY_DAYS))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_KEY_LIFETIME.days:
        message = f"Expiry must be between 1 and {MAX_KEY_LIFETIME.days} days"
        raise InvalidRequest(message, details={"expires_in_days": message})
    return now + timedelta(days=int(raw))


def chosen_overlap(form: Form) -> timedelta:
    raw = form.get("overlap_seconds", str(DEFAULT_OVERLAP_SECONDS))
    if not raw.isdigit() or int(raw) not in {seconds for seconds, _ in OVERLAP_PRESETS}:
        message = "Pick one of the overlap choices"
        raise InvalidRequest(message, details={"overlap_seconds": message})
    return timedelta(seconds=int(raw))


def chosen_limit(form: Form, name: str) -> int | None:
    """A blank field means "the organization's default"."""
    raw = form.get(name)
    if not raw:
        return None
    if not raw.isdigit():
        message = "Enter a whole number, or leave it blank for the default"
        raise InvalidRequest(message, details={name: message})
    return int(raw)


def key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


def form_values(key: ApiKey, choices: list[ToolChoice]) -> dict[str, Any]:
    """The edit form filled in from the key: picker patterns ticked, the rest in the text field."""
    offered = {choice.pattern for choice in choices}
    allowed = key.allowed_tools
    return {
        "name": key.name,
        "scopes": list(key.scopes),
        "tools_mode": "all" if allowed is None else "some",
        "tools": [p for p in allowed or [] if p in offered],
        "tool_patterns": " ".join(p for p in allowed or [] if p not in offered),
        "rate_limit_per_second": key.rate_limit_per_second or "",
        "daily_quota": key.daily_quota or "",
    }
