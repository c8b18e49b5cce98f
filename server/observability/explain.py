"""Why a key may or may not call a tool now: the runtime's own decisions, in the runtime's order.

1. the key's standing (revoked, expired) — what ``KeyVerifier`` refuses with;
2. the tool routes' scope (``runtime``) — what the route guard refuses with;
3. the tool decision — ``ToolRegistry.decide``, which the runtime acts on.

Rate limits are left out: they depend on traffic, not on the key's policy.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from auth.middleware import principal_for
from auth.models import ApiKey
from auth.records import KeyRecord
from auth.scopes import RUNTIME
from auth.verifier import standing
from server.observability.observed import scope_rule
from tools.registry import Tool, ToolRegistry


@dataclass(frozen=True, slots=True)
class Explanation:
    key_id: str
    tool: str
    allowed: bool
    reason: str
    rule: str
    policy_revision: int

    def public(self) -> dict[str, Any]:
        return {
            "keyId": self.key_id,
            "tool": self.tool,
            "allowed": self.allowed,
            "reason": self.reason,
            "rule": self.rule,
            "policyRevision": self.policy_revision,
        }


def explain_tool(
    *,
    key: ApiKey,
    tool_name: str,
    tools: ToolRegistry,
    disabled: Collection[str],
    now: datetime,
    upstream: Mapping[str, Tool] | None = None,
) -> Explanation:
    record = KeyRecord.from_row(key)

    def answer(allowed: bool, reason: str, rule: str) -> Explanation:
        return Explanation(record.key_id, tool_name, allowed, reason, rule, record.policy_revision)

    refusal = standing(record, now)
    if refusal is not None:
        return answer(False, refusal.code, refusal.rule or refusal.message)
    held, rule = scope_rule(RUNTIME, record.scopes)
    if held is None:
        return answer(False, "insufficient_scope", rule)
    verdict = tools.decide(principal_for(record), tool_name, disabled, upstream)
    return answer(verdict.allowed, verdict.reason, verdict.rule)
