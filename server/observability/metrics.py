"""The Prometheus metrics of one capgate process (or, with ``--workers N``, of all its workers).

Names follow the OpenTelemetry conventions where one exists (``mcp.server.operation.duration``,
``http.server.request.duration``, in Prometheus spelling). No label ever holds a key id or a
secret; labels that clients or tenants choose are capped (``BoundedLabel``).
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import Scope

from auth.credentials import extract_api_key
from auth.errors import CapgateError
from auth.keys import parse_key
from auth.observer import AuthObserver
from server.observability.labels import BoundedLabel
from server.observability.observed import observed, route_template
from server.observability.tracing import Spans

# OpenTelemetry MCP semantic conventions, mcp.server.operation.duration.
MCP_DURATION_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)
# OpenTelemetry HTTP semantic conventions, http.server.request.duration.
HTTP_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
PROPAGATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BREAKER_STATES = ("closed", "open", "half_open")
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REFUSAL_RULES = {
    "missing_api_key": "no credential presented",
    "invalid_api_key": "key malformed, unknown, or wrong secret",
    "conflicting_credentials": "two different keys presented",
    "too_many_streams": "open stream limit per key reached",
}


def _presented(scope: Scope) -> str:
    """The credential of a refused request, only to read its public key id (the secret is not looked at)."""
    try:
        return extract_api_key(scope["headers"])
    except CapgateError:
        return ""


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


RECORDING_METHODS = (
    "argon2_verified",
    "argon2_waiting",
    "key_cache",
    "rate_limit",
    "redis_error",
    "stream_opened",
    "stream_closed",
    "mcp_operation_done",
    "http_request_done",
    "organization_request",
    "authz_decision",
    "tool_executed",
    "key_change_applied",
    "integration_health",
    "breaker_state",
)


def _ignore(*_args: Any, **_kwargs: Any) -> None:
    return None


def all_workers_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


class Metrics(AuthObserver):
    def __init__(self, *, max_organizations: int = 100, spans: Spans | None = None, enabled: bool = True) -> None:
        if not enabled:  # metrics_enabled=false: every recording call is a no-op, /metrics stays empty
            for name in RECORDING_METHODS:
                setattr(self, name, _ignore)
        self.registry = CollectorRegistry()
        self.spans = spans or Spans(enabled=False)
        self.organization_label = BoundedLabel(max_organizations)
        self.tool_label = BoundedLabel(500)
        self.method_label = BoundedLabel(64)
        self.integration_label = BoundedLabel(200)
        self._propagated: OrderedDict[str, datetime] = OrderedDict()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}  # bounded: every label value is capped
        r = self.registry
        self.mcp_operation = Histogram(
            "mcp_server_operation_duration_seconds",
            "MCP request duration on the server, from receipt to result (OpenTelemetry MCP conventions)",
            ["mcp_method_name", "gen_ai_tool_name", "error_type"],
            buckets=MCP_DURATION_BUCKETS,
            registry=r,
        )
        self.http_request = Histogram(
            "http_server_request_duration_seconds",
            "HTTP request duration by route template",
            ["route", "method", "status"],
            buckets=HTTP_DURATION_BUCKETS,
            registry=r,
        )
        self.organization_requests = Counter(
            "capgate_organization_requests_total",
            "Authenticated requests per organization (at most metrics_max_organizations ids, then 'other')",
            ["organization"],
            registry=r,
        )
        self.authz_decisions = Counter(
            "capgate_authz_decisions_total",
            "Authorization decisions by outcome and reason",
            ["decision", "reason"],
            registry=r,
        )
        self.rate_limit_decisions = Counter(
            "capgate_rate_limit_decisions_total", "Rate limiter decisions by window", ["decision", "window"], registry=r
        )
        self.redis_errors = Counter("capgate_redis_errors_total", "Failed Redis operations", ["op"], registry=r)
        self.argon2_verifications = Counter(
            "capgate_argon2_verifications_total", "argon2 secret verifications by result", ["result"], registry=r
        )
        self.argon2_queue = Gauge(
            "capgate_argon2_queue_depth",
            "argon2 verifications waiting or running",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.key_cache_requests = Counter(
            "capgate_key_cache_requests_total",
            "Key cache lookups (record, verified digest)",
            ["cache", "result"],
            registry=r,
        )
        self.revocation_propagation = Histogram(
            "capgate_revocation_propagation_seconds",
            "Time from a key change's commit to this process applying it",
            buckets=PROPAGATION_BUCKETS,
            registry=r,
        )
        self.streams_open = Gauge(
            "capgate_streams_open", "Open event streams", ["kind"], registry=r, multiprocess_mode="livesum"
        )
        self.streams_closed = Counter("capgate_streams_closed_total", "Closed event streams", ["reason"], registry=r)
        self.tool_executions = Counter(
            "capgate_tool_executions_total", "Tool executions by final status", ["tool", "status"], registry=r
        )
        self.integration_up = Gauge(
            "capgate_integration_up",
            "1 when the upstream integration answers, else 0",
            ["integration"],
            registry=r,
            multiprocess_mode="mostrecent",
        )
        self.integration_breaker = Gauge(
            "capgate_integration_breaker_state",
            "1 for the circuit breaker's current state (closed, open, half_open)",
            ["integration", "state"],
            registry=r,
            multiprocess_mode="mostrecent",
        )

    def _child(self, metric: Any, *values: str) -> Any:
        """``metric.labels(*values)``, remembered: the hot path skips the client's label validation."""
        key = (id(metric), values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child

    # auth's observer -----------------------------------------------------------------------------
    def argon2_verified(self, ok: bool) -> None:
        self.argon2_verifications.labels("ok" if ok else "mismatch").inc()

    def argon2_waiting(self, delta: int) -> None:
        self.argon2_queue.inc(delta)

    def key_cache(self, cache: str, hit: bool) -> None:
        self._child(self.key_cache_requests, cache, "hit" if hit else "miss").inc()

    def rate_limit(self, decision: str, window: str) -> None:
        self._child(self.rate_limit_decisions, decision, window).inc()

    def redis_error(self, op: str) -> None:
        self.redis_errors.labels(op).inc()

    def stream_opened(self, kind: str) -> None:
        self.streams_open.labels(kind).inc()

    def stream_closed(self, kind: str, reason: str) -> None:
        self.streams_open.labels(kind).dec()
        self.streams_closed.labels(reason).inc()

    def span(self, name: str) -> AbstractContextManager[Any]:
        return self.spans.child(name)

    def refused(self, scope: Scope, error: CapgateError) -> None:
        request = observed(scope)
        if request is None:
            return
        key_id = organization_id = revision = None
        if error.decided_for is not None:
            key_id, organization_id, revision = error.decided_for
        elif (user := scope.get("user")) is not None and hasattr(user, "key_id"):
            key_id, organization_id, revision = user.key_id, user.organization_id, user.policy_revision
        else:
            parsed = parse_key(_presented(scope))
            key_id = parsed.key_id if parsed else None
        request.decide(
            allowed=False,
            reason=error.code,
            rule=error.rule or REFUSAL_RULES.get(error.code, error.message),
            route=f"{scope['method']} {route_template(scope)}",
            key_id=key_id,
            organization_id=organization_id,
            policy_revision=revision,
        )

    # the server's -------------------------------------------------------------------------------
    def mcp_operation_done(self, method: str, tool: str | None, error_type: str, seconds: float) -> None:
        self._child(self.mcp_operation, self.method_label(method), tool or "", error_type).observe(seconds)

    def http_request_done(self, route: str, method: str, status: int, seconds: float) -> None:
        method = method if method in HTTP_METHODS else "_OTHER"  # as the OpenTelemetry HTTP conventions say
        self._child(self.http_request, route, method, str(status)).observe(seconds)

    def organization_request(self, organization_id: str) -> None:
        self._child(self.organization_requests, self.organization_label(organization_id)).inc()

    def authz_decision(self, allowed: bool, reason: str, count: int = 1) -> None:
        self._child(self.authz_decisions, "allowed" if allowed else "refused", reason).inc(count)

    def tool_executed(self, tool: str, status: str) -> None:
        self._child(self.tool_executions, self.tool_label(tool), status).inc()

    def key_change_applied(self, key_id: str, changed_at: datetime, *, now: float | None = None) -> None:
        """A revocation (or other grant change) took effect here; each change is measured once per process."""
        if self._propagated.get(key_id) == changed_at:
            return
        self._propagated[key_id] = changed_at
        if len(self._propagated) > 10_000:
            self._propagated.popitem(last=False)
        elapsed = (time.time() if now is None else now) - changed_at.timestamp()
        self.revocation_propagation.observe(max(0.0, elapsed))

    # integrations register their upstreams' state here --------------------------------------------
    def integration_health(self, integration: str, healthy: bool) -> None:
        self.integration_up.labels(self.integration_label(integration)).set(1 if healthy else 0)

    def breaker_state(self, integration: str, state: str) -> None:
        """``state`` is closed, open or half_open."""
        name = self.integration_label(integration)
        for known in BREAKER_STATES:
            self.integration_breaker.labels(name, known).set(1 if known == state else 0)

    def exposition(self) -> bytes:
        """The Prometheus text format; with ``PROMETHEUS_MULTIPROC_DIR`` set, summed over every worker."""
        return generate_latest(self.registry if multiprocess_dir() is None else all_workers_registry())
