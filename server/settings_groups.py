"""Groups of fields of the one settings class (server/settings.py), kept apart so each module stays short.

They are plain models: ``Settings`` inherits them, and reads every field from CAPGATE_* and capgate.toml.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr


class ServingSettings(BaseModel):
    mcp_fast_path: bool = Field(
        default=True,
        description="answer plain stateless (2026-07-28) tools/list and tools/call natively instead of through the"
        " SDK's per-request machinery; false sends every MCP request through the SDK",
    )
    server_timing: bool = Field(
        default=True,
        description="add a Server-Timing header (auth, ratelimit, record, total) to authenticated responses",
    )


class ObservabilitySettings(BaseModel):
    metrics_enabled: bool = Field(default=True, description="count requests, decisions and the rest for /metrics")
    metrics_bind: str | None = Field(
        default=None,
        description="host:port of a separate listener serving /metrics without a key (keep it off public networks);"
        " /metrics on the main port needs a key with scope metrics:read",
    )
    metrics_max_organizations: int = Field(
        default=100, ge=0, description="organization ids used as a metric label before the rest count as 'other'"
    )
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None,
        description="OTLP/HTTP endpoint for traces (needs `pip install 'capgate[otel]'`); the standard OTEL_*"
        " variables work too",
    )
    otel_service_name: str = Field(default="capgate", description="service.name of exported traces")
    otel_record_tool_io: bool = Field(
        default=False, description="put tool arguments and results on trace spans (they may hold personal data)"
    )
    decisions_enabled: bool = Field(default=True, description="write a decision record for every authorization")
    decisions_allowed: Literal["all", "sample", "aggregate"] = Field(
        default="all",
        description="allowed decisions: one record each (all), a decisions_sample_rate share (sample), or one"
        " record per key, route, tool and minute (aggregate); refusals are always recorded",
    )
    decisions_sample_rate: float = Field(default=0.1, gt=0, le=1, description="share of allowed decisions kept")
    decisions_refusals_per_minute: int = Field(
        default=100,
        ge=1,
        description="refusals of one key and reason recorded one by one per minute; the rest"
        " of that minute become one aggregated record",
    )
    decisions_flush_seconds: float = Field(
        default=1.0, gt=0, description="how often buffered decision records are written"
    )


class IntegrationSettings(BaseModel):
    secret_key: SecretStr | None = Field(
        default=None,
        description="data key(s) sealing connected-account credentials: base64 of 32 bytes, or `id:base64` entries"
        " separated by commas (first = current); default: generated once into data_dir/secret-keys",
    )
    integration_allowed_urls: list[str] = Field(
        default_factory=list,
        description="upstream destinations an integration set up over HTTP may use although they are not public:"
        " host or URL patterns (`127.0.0.1:*`, `*.corp.example`, `http://10.0.0.5:3001`) or networks (`10.0.0.0/8`);"
        " default: none (loopback, private, link-local, unspecified and capgate's own address are refused)",
    )
    integration_cache_seconds: float = Field(
        default=2.0, ge=0, description="how long an organization's integrations and accounts are cached per process"
    )
    integration_tools_refresh_seconds: float = Field(
        default=300.0, gt=0, description="an upstream's tool listing older than this is refreshed in the background"
    )
    upstream_idle_seconds: float = Field(
        default=300.0, gt=0, description="an upstream connection (or stdio process) unused this long is closed"
    )
    upstream_failure_threshold: int = Field(
        default=3, ge=1, description="consecutive upstream failures that open an account's circuit breaker"
    )
    upstream_cooldown_seconds: float = Field(
        default=30.0, gt=0, description="how long an open circuit breaker fails calls fast before one is let through"
    )
    upstream_backoff_seconds: float = Field(
        default=0.2, ge=0, description="first reconnect delay after an upstream failure; doubles per further failure"
    )
    max_stdio_upstreams: int = Field(
        default=20,
        ge=1,
        description="stdio upstream processes running at once (the least recently used idle one"
        " is stopped to make room)",
    )


class ReplicaSettings(BaseModel):
    replica_url: str | None = Field(default=None, description="URL other replicas relay legacy MCP sessions to")
    mcp_events_per_stream: int = Field(
        default=256, ge=1, description="SSE events kept per legacy MCP stream for resuming (older ones are deleted)"
    )
    mcp_event_retention_seconds: float = Field(
        default=3600.0, gt=0, description="stored legacy MCP stream events older than this are deleted"
    )
