"""One observation per HTTP request: request id, log line, latency histogram, server span, decisions.

The outermost middleware puts an ``ObservedRequest`` into the ASGI scope; every layer that
decides about authorization (auth, rate limit, route scope, the runtime's tool decision)
records through it, so the decision record, the metric, the span attributes and the log
line all say the same thing. The log line never carries a credential header or query string.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from opentelemetry.trace import Span
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth.principal import Principal
from server.observability.decisions import DecisionLog
from server.observability.metrics import Metrics
from server.observability.observed import SCOPE_KEY, ObservedRequest, route_template
from server.observability.tracing import Spans

logger = logging.getLogger("capgate.request")
_SAFE_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,128}$")


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name.lower() == b"x-request-id" and _SAFE_REQUEST_ID.match(value):
            return bytes(value).decode()
    return uuid.uuid4().hex


def _traceparent_ids(scope: Scope) -> tuple[str | None, str | None]:
    """Trace and parent span id of an incoming ``traceparent`` header (logged even when tracing is off)."""
    for name, value in scope["headers"]:
        if name == b"traceparent":
            parts = value.decode("latin-1").split("-")
            if len(parts) == 4 and len(parts[1]) == 32 and len(parts[2]) == 16:
                return parts[1], parts[2]
    return None, None


class RequestObservationMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, spans: Spans, decisions: DecisionLog) -> None:
        self.app = app
        self.metrics = metrics
        self.spans = spans
        self.decisions = decisions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request = ObservedRequest(_request_id(scope), self.decisions, self.metrics, self.spans)
        scope[SCOPE_KEY] = request
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request.request_id.encode())]
            await send(message)

        with self.spans.request(f"{scope['method']}", scope["headers"]) as span:
            if span is not None:
                request.span = span
                context = span.get_span_context()
                request.trace_id, request.span_id = format(context.trace_id, "032x"), format(context.span_id, "016x")
            else:
                request.trace_id, request.span_id = _traceparent_ids(scope)
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._finish(scope, request, span, status, time.perf_counter() - started)

    def _finish(self, scope: Scope, request: ObservedRequest, span: Span | None, status: int, elapsed: float) -> None:
        route = route_template(scope)
        method = scope["method"]
        self.metrics.http_request_done(route, method, status, elapsed)
        principal = scope.get("user")
        key_id = organization_id = None
        if isinstance(principal, Principal):
            key_id, organization_id = principal.key_id, principal.organization_id
            self.metrics.organization_request(organization_id)
        if span is not None:
            span.update_name(f"{method} {route}")
            span.set_attributes(
                {"http.request.method": method, "http.route": route, "http.response.status_code": status}
            )
        logger.info(
            "request",
            extra={
                "request_id": request.request_id,
                "trace_id": request.trace_id,
                "span_id": request.span_id,
                "method": method,
                "path": scope["path"],
                "status": status,
                "latency_ms": round(elapsed * 1000, 3),
                "key_id": key_id,
                "organization_id": organization_id,
                "decision_reason": request.reason,
                "policy_revision": request.policy_revision,
            },
        )
