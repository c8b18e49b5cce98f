"""The observation of one HTTP request, kept in its ASGI scope: the one way to record a decision."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from opentelemetry.trace import Span
from starlette.routing import Match
from starlette.types import Scope

from auth.principal import Principal
from auth.scopes import granting_scope
from server.observability.decisions import Decision, DecisionLog
from server.observability.tracing import Spans
from tools.access import ALLOWED


class DecisionCounter(Protocol):
    """The part of ``Metrics`` a request's decisions feed (a protocol: metrics.py imports this module)."""

    def authz_decision(self, allowed: bool, reason: str) -> None: ...


SCOPE_KEY = "capgate.observed"


class ObservedRequest:
    __slots__ = ("request_id", "span", "trace_id", "span_id", "reason", "policy_revision", "_log", "_metrics", "_spans")

    def __init__(self, request_id: str, log: DecisionLog, metrics: DecisionCounter, spans: Spans) -> None:
        self.request_id = request_id
        self.span: Span | None = None
        self.trace_id: str | None = None
        self.span_id: str | None = None
        self.reason: str | None = None
        self.policy_revision: int | None = None
        self._log = log
        self._metrics = metrics
        self._spans = spans

    def decide(
        self,
        *,
        allowed: bool,
        reason: str,
        rule: str,
        route: str,
        tool: str | None = None,
        principal: Principal | None = None,
        key_id: str | None = None,
        organization_id: str | None = None,
        policy_revision: int | None = None,
    ) -> None:
        if principal is not None:
            key_id, organization_id = principal.key_id, principal.organization_id
            policy_revision = principal.policy_revision
        self.reason, self.policy_revision = reason, policy_revision
        self._metrics.authz_decision(allowed, reason)
        if self._spans.enabled:
            attributes: dict[str, Any] = {
                "capgate.decision": "allowed" if allowed else "refused",
                "capgate.reason": reason,
                "capgate.rule": rule,
            }
            if key_id is not None:
                attributes["capgate.key_id"] = key_id
            if organization_id is not None:
                attributes["capgate.organization_id"] = organization_id
            if policy_revision is not None:
                attributes["capgate.policy_revision"] = policy_revision
            self._spans.annotate(attributes)
            if self.span is not None:
                self.span.set_attributes(attributes)
        self._log.record(
            Decision(
                allowed=allowed,
                reason=reason,
                rule=rule,
                route=route,
                tool=tool,
                key_id=key_id,
                organization_id=organization_id,
                policy_revision=policy_revision,
                request_id=self.request_id,
                trace_id=self.trace_id,
            )
        )


def observed(scope: Scope) -> ObservedRequest | None:
    return scope.get(SCOPE_KEY)


def route_template(scope: Scope) -> str:
    """The matched route's path template (bounded, unlike the path); for a request refused before routing,
    the template it would have matched; ``unmatched`` when none does."""
    route = scope.get("route")
    if route is None and "app" in scope:
        route = next((r for r in scope["app"].routes if r.matches(scope)[0] != Match.NONE), None)
    return getattr(route, "path", "unmatched")


def scope_rule(required: str, key_scopes: Sequence[str]) -> tuple[str | None, str]:
    """The key scope that admits it to a route needing ``required`` (None: none does), and the rule in words."""
    held = granting_scope(key_scopes, required)
    has = held if held is not None else (", ".join(key_scopes) or "no scope")
    return held, f"route needs scope {required}; key has {has}"


def route_decision(scope: Scope, principal: Principal, required: str, *, record_allowed: bool) -> bool:
    """Whether the key's scopes admit it to the route; records a refusal always, an allow when asked to."""
    held, rule = scope_rule(required, principal.key_scopes)
    request = observed(scope)
    if request is not None and (held is None or record_allowed):
        request.decide(
            allowed=held is not None,
            reason=ALLOWED if held is not None else "insufficient_scope",
            rule=rule,
            route=f"{scope['method']} {route_template(scope)}",
            principal=principal,
        )
    return held is not None
