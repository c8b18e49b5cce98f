"""The one settings class. Read once, at the edge (CLI or ``create_app``), then passed down."""

from __future__ import annotations

import socket
import sys
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from auth.hashing import Argon2Parameters
from server.settings_groups import IntegrationSettings, ObservabilitySettings, ReplicaSettings, ServingSettings

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


def project_dir() -> Path:
    """The folder holding the virtual environment capgate runs from (the checkout after `make serve`), else cwd.

    Defaults are resolved from here rather than from the current directory, so `capgate` finds the same
    database and settings file from any folder.
    """
    if sys.prefix != sys.base_prefix:
        return Path(sys.prefix).resolve().parent
    return Path.cwd()


_ASYNC_DRIVERS = {"sqlite": "aiosqlite", "postgresql": "asyncpg"}
_SYNC_DRIVERS = {"", "pysqlite", "aiosqlite", "psycopg2", "psycopg", "asyncpg"}


def async_database_url(url: str) -> str:
    """Takes plain `sqlite://` and `postgresql://` (or `postgres://`) URLs and picks the async driver capgate uses."""
    scheme, separator, rest = url.strip().partition("://")
    backend, _, driver = scheme.lower().partition("+")
    backend = "postgresql" if backend == "postgres" else backend
    if not separator or backend not in _ASYNC_DRIVERS:
        raise ValueError(
            f"{url!r} is not a SQLite or PostgreSQL URL; use sqlite:///path/to/capgate.db or"
            " postgresql://user@host:5432/dbname"
        )
    if driver not in _SYNC_DRIVERS:
        raise ValueError(f"capgate talks to {backend} through {_ASYNC_DRIVERS[backend]}, not {driver!r}")
    return f"{backend}+{_ASYNC_DRIVERS[backend]}://{rest}"


class Settings(BaseSettings, ObservabilitySettings, IntegrationSettings, ReplicaSettings, ServingSettings):
    model_config = SettingsConfigDict(
        env_prefix="CAPGATE_",
        toml_file=[project_dir() / "capgate.toml", Path("capgate.toml")],  # the current folder's file wins
        extra="ignore",
    )

    data_dir: Path = Field(
        default_factory=lambda: project_dir() / "var",
        description="where the SQLite file and the generated pepper live; default: var/ beside the .venv capgate"
        " runs from (the checkout after `make serve`), so every command finds the same database from any folder",
    )
    database_url: str | None = Field(
        default=None,
        description="database URL, sqlite:///… or postgresql://… (the async driver is picked for you);"
        " default: SQLite file data_dir/capgate.db (WAL mode)",
    )
    debug: bool = Field(default=False, description="CLI and startup failures print the whole traceback (also --debug)")
    host: str = Field(default="127.0.0.1", description="address `capgate serve` binds to")
    port: int = Field(default=8765, description="port `capgate serve` binds to")
    public_base_url: str | None = Field(
        default=None, description="absolute URL clients use to reach the server; default http://host:port"
    )
    allowed_hosts: list[str] = Field(
        default_factory=lambda: ["127.0.0.1:*", "localhost:*", "[::1]:*"],
        description="Host header values the MCP endpoint accepts (DNS-rebinding protection)",
    )
    allowed_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        description="Origin header values the MCP endpoint accepts from browsers (DNS-rebinding protection)",
    )
    mcp_session_idle_seconds: float = Field(
        default=1800.0, gt=0, description="a legacy MCP session with no request for this long is closed"
    )
    max_stream_seconds: float = Field(
        default=3600.0, gt=0, description="longest any request or stream may stay open, even after its key is revoked"
    )
    max_streams_per_key: int = Field(default=50, ge=1, description="open event streams one key may hold at once")
    max_executions_per_key: int = Field(
        default=64, ge=1, description="tool calls one key may have running at once in a process; the next gets 429"
    )
    max_executions_per_organization: int = Field(
        default=256, ge=1, description="tool calls one organization may have running at once in a process"
    )
    max_mcp_sessions_per_key: int = Field(
        default=20, ge=1, description="open legacy MCP sessions one key may hold; the next initialize gets 429"
    )
    max_mcp_sessions: int = Field(
        default=2000, ge=1, description="open legacy MCP sessions per process; beyond it the idlest one is closed"
    )
    pepper: SecretStr | None = Field(
        default=None, description="HMAC pepper for the verified-key cache; default: generated once into data_dir"
    )
    argon2_time_cost: int = Field(default=2, ge=1, description="argon2id passes")
    argon2_memory_cost: int = Field(default=19_456, ge=8, description="argon2id memory in KiB")
    argon2_parallelism: int = Field(default=1, ge=1, description="argon2id lanes")
    argon2_max_concurrency: int = Field(default=2, ge=1, description="argon2 verifications running at once")
    key_cache_ttl_seconds: float = Field(
        default=30.0, gt=0, description="backstop lifetime of a cached key record (changes arrive sooner)"
    )
    key_cache_size: int = Field(default=10_000, ge=1, description="key records and verified digests kept in memory")
    key_change_poll_seconds: float = Field(
        default=0.25, gt=0, description="how often the server looks for keys changed by other processes"
    )
    failed_verification_limit: int = Field(
        default=5,
        ge=1,
        description="wrong secrets per key id from one address and window before argon2 no longer runs for them",
    )
    failed_verification_source_limit: int = Field(
        default=50, ge=1, description="failed key verifications per source address and window before it gets 429"
    )
    failed_verification_window_seconds: float = Field(
        default=60.0, gt=0, description="window of failed_verification_limit"
    )
    header_timeout_seconds: float = Field(
        default=10.0, gt=0, description="a connection must send complete request headers within this (`capgate serve`)"
    )
    body_read_timeout_seconds: float = Field(
        default=30.0, gt=0, description="a request body must arrive within this of the request's start; else 408"
    )
    keep_alive_timeout_seconds: float = Field(
        default=5.0, ge=1, description="an idle keep-alive connection is closed after this (`capgate serve`)"
    )
    max_connections: int = Field(
        default=1000, ge=1, description="concurrent connections and requests `capgate serve` accepts; more get 503"
    )
    max_header_bytes: int = Field(
        default=16_384, ge=1024, description="largest request line plus headers (`capgate serve`); larger get 400"
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="addresses (or CIDR ranges) whose X-Forwarded-For/-Proto are believed; empty: nobody's",
    )
    record_max_bytes: int = Field(
        default=16_384,
        ge=256,
        description="largest stored tool input, result, error or event (JSON bytes); larger ones are stored"
        " truncated with a $truncated marker (the caller still gets the whole result)",
    )
    retention_days: float = Field(
        default=30.0, gt=0, description="finished executions and their events older than this are deleted"
    )
    audit_retention_days: float = Field(default=365.0, gt=0, description="audit rows older than this are deleted")
    purge_interval_seconds: float = Field(
        default=3600.0, gt=0, description="how often each server process deletes what retention allows"
    )
    shutdown_drain_seconds: float = Field(
        default=0.0,
        ge=0,
        description="on SIGTERM, answer /readyz 503 this long before closing the listener, so a load balancer"
        " stops routing here first (set it above the balancer's health-check interval)",
    )
    shutdown_timeout_seconds: float = Field(
        default=30.0, gt=0, description="on shutdown, in-flight requests may finish for this long"
    )
    workers: int = Field(default=1, ge=1, description="server processes `capgate serve` runs (uvicorn workers)")
    log_level: str = Field(default="INFO", description="log level of the JSON request log")
    max_request_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="largest request body (Runtime API and MCP); larger bodies get 413"
    )
    memory_max_document_bytes: int = Field(default=262_144, ge=1, description="largest memory document, in bytes")
    memory_quota_bytes: int = Field(
        default=52_428_800, ge=1, description="total size of one organization's memory documents, in bytes"
    )
    tool_settings_cache_seconds: float = Field(
        default=2.0, ge=0, description="how long an organization's tool enable/disable state is cached per process"
    )
    event_flush_seconds: float = Field(
        default=0.2,
        gt=0,
        description="a running execution's record and buffered events are written at least this often;"
        " calls that finish sooner are recorded in one transaction",
    )
    sse_heartbeat_seconds: float = Field(
        default=15.0, gt=0, description="comment line sent on an idle execution event stream to keep it open"
    )
    execution_poll_seconds: float = Field(
        default=0.5, gt=0, description="how often a stream or waiter polls the database for an execution run elsewhere"
    )
    worker_heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        description="how often a server process marks itself alive; executions of a process silent for three"
        " beats become interrupted",
    )
    idempotency_ttl_seconds: float = Field(
        default=86_400.0, gt=0, description="how long an Idempotency-Key is remembered"
    )
    rate_limit_enabled: bool = Field(default=True, description="apply per-key rate limits to runtime and MCP routes")
    rate_limit_per_second: int = Field(
        default=100, ge=1, description="requests per second per key, unless the key or its organization overrides it"
    )
    daily_quota: int = Field(
        default=5_000, ge=1, description="requests per key per UTC day, unless the key or its organization overrides it"
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; when set, rate limits are shared by every replica through Redis"
    )
    redis_max_connections: int = Field(default=64, ge=1, description="Redis connections per process")
    redis_timeout_seconds: float = Field(
        default=0.05,
        gt=0,
        description="Redis connect and read timeout (pool wait: 10x); a silent Redis costs at most this",
    )
    redis_retry_seconds: float = Field(
        default=1.0, gt=0, description="after Redis failed three times in a row, how long until it is tried again"
    )
    redis_outage: Literal["fallback", "closed", "open"] = Field(
        default="fallback",
        description="rate limits while Redis is unreachable: fallback = in-process limits at limit/replicas,"
        " closed = refuse counted requests (503), open = admit them",
    )
    replicas: int = Field(
        default=1, ge=1, description="server processes sharing one Redis; each enforces limit/replicas during an outage"
    )
    redis_key_prefix: str = Field(default="capgate", description="prefix of every Redis key capgate writes")
    usage_flush_seconds: float = Field(
        default=20.0,
        gt=0,
        le=50,
        description="how often last-used times, daily counts and auth-failure tallies are written to the database",
    )
    rate_limit_policy_ttl_seconds: float = Field(
        default=10.0, gt=0, description="how long a key's resolved limits are cached before they are read again"
    )
    login_failure_limit: int = Field(
        default=5, ge=1, description="wrong passwords per email and window before POST /api-keys answers 429"
    )
    login_failure_window_seconds: float = Field(default=300.0, gt=0, description="window of login_failure_limit")
    max_active_keys_per_organization: int = Field(
        default=1_000, ge=1, description="active keys an organization may hold; creating one more over HTTP gets 409"
    )
    login_source_failure_limit: int = Field(
        default=50, ge=1, description="failed sign-ins per source address and window before it gets 429"
    )
    login_max_pending_per_source: int = Field(
        default=4, ge=1, description="sign-ins one source address may have waiting (they run one at a time)"
    )
    login_max_pending: int = Field(default=64, ge=1, description="sign-ins waiting or running in all; beyond: 429")
    admin_session_seconds: float = Field(
        default=28_800.0, gt=0, description="how long an admin console sign-in lasts before the user signs in again"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str | None) -> str | None:
        return async_database_url(value) if value else None

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'capgate.db'}"

    @cached_property
    def resolved_public_base_url(self) -> str:
        """CAPGATE_PUBLIC_BASE_URL, else the bound address; a wildcard bind (0.0.0.0, ::) is no
        address a client can use, so this host's name stands in for it; IPv6 literals get brackets."""
        return self.public_base_url.rstrip("/") if self.public_base_url else self.bound_url

    @property
    def resolved_replica_url(self) -> str:
        return self.replica_url.rstrip("/") if self.replica_url else self.bound_url

    @property  # the bound address as a URL; a wildcard bind uses this host's name
    def bound_url(self) -> str:
        host = socket.gethostname() if self.host in WILDCARD_HOSTS else self.host
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def argon2_parameters(self) -> Argon2Parameters:
        return Argon2Parameters(
            time_cost=self.argon2_time_cost, memory_cost=self.argon2_memory_cost, parallelism=self.argon2_parallelism
        )
