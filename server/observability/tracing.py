"""OpenTelemetry traces, opt-in.

The MCP SDK already opens one SERVER span per MCP message with the MCP semantic-convention
attributes, its parent taken from ``params._meta`` (``traceparent``/``tracestate``). capgate adds
a SERVER span per HTTP request (parent from the W3C headers), child spans for auth, rate limit,
the tool and the record write, and ``capgate.*`` attributes on the span that is current when an
authorization is decided. Spans are only exported when a tracer provider is installed: by
``configure_tracing`` when an OTLP endpoint is set (``pip install 'capgate[otel]'``), or by the
embedding process (``opentelemetry-instrument``, tests). Without one, nothing is created at all.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.trace import Span, SpanKind

logger = logging.getLogger(__name__)
TRACER_NAME = "capgate"


def tracing_installed() -> bool:
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def otlp_endpoint(configured: str | None) -> str | None:
    """The traces endpoint: capgate's setting, else the standard ``OTEL_*`` variables; None when disabled."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    if os.environ.get("OTEL_TRACES_EXPORTER", "").lower() == "none":
        return None
    if configured:
        return (
            configured.rstrip("/") + "/v1/traces" if not configured.rstrip("/").endswith("/v1/traces") else configured
        )
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or (
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
        if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        else None
    )


def configure_tracing(endpoint: str | None, service_name: str) -> bool:
    """Installs an OTLP/HTTP exporting tracer provider when an endpoint is configured; True when tracing is on."""
    if tracing_installed():
        return True
    if endpoint is None:
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        logger.warning("an OTLP endpoint is set but the OpenTelemetry SDK is missing: pip install 'capgate[otel]'")
        return False
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    trace.set_tracer_provider(provider)
    return True


class _HeaderGetter:
    """Reads W3C trace headers straight from the ASGI header list."""

    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        wanted = key.encode()
        values = [value.decode("latin-1") for name, value in carrier if name == wanted]
        return values or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [name.decode("latin-1") for name, _ in carrier]


_HEADERS = _HeaderGetter()


class Spans:
    """Creates capgate's spans when tracing is on; a no-op otherwise (one boolean test per call)."""

    def __init__(self, *, enabled: bool) -> None:
        self.enabled = enabled
        self._tracer = trace.get_tracer(TRACER_NAME)

    @contextmanager
    def _request_span(self, name: str, headers: list[tuple[bytes, bytes]]) -> Iterator[Span]:
        parent = extract(headers, getter=_HEADERS)  # type: ignore[arg-type]
        span = self._tracer.start_span(name, context=parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            yield span
        finally:
            otel_context.detach(token)
            span.end()

    def request(self, name: str, headers: list[tuple[bytes, bytes]]) -> AbstractContextManager[Span | None]:
        return self._request_span(name, headers) if self.enabled else nullcontext()

    def child(self, name: str, attributes: Mapping[str, Any] | None = None) -> AbstractContextManager[Any]:
        if not self.enabled:
            return nullcontext()
        return self._tracer.start_as_current_span(name, attributes=attributes)

    def annotate(self, attributes: Mapping[str, Any]) -> None:
        """Adds attributes to the span that is current (the request's, the MCP message's or a child's)."""
        if self.enabled:
            trace.get_current_span().set_attributes(attributes)


def current_ids() -> tuple[str | None, str | None]:
    """The current trace and span ids in hex, for logs and decision records (None when not traced)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
