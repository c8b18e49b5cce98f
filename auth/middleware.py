"""Pure ASGI authentication: one verification per HTTP request, streaming untouched."""

from __future__ import annotations

import time
from collections.abc import Callable, Collection

from mcp.server.auth.middleware.auth_context import auth_context_var
from starlette.authentication import AuthCredentials
from starlette.types import ASGIApp, Receive, Scope, Send

from auth.credentials import extract_api_key
from auth.errors import CapgateError, send_error
from auth.principal import Principal
from auth.records import KeyRecord
from auth.server_timing import ServerTiming, current_timing
from auth.streams import StreamRegistry, run_tracked
from auth.verifier import KeyVerifier

# Called synchronously on the request path: they must only record in memory.
FailureHook = Callable[[Scope, "str | None", CapgateError], None]
SuccessHook = Callable[[Scope, KeyRecord], None]


def principal_for(record: KeyRecord) -> Principal:
    return Principal(
        key_id=record.key_id,
        organization_id=record.organization_id,
        key_name=record.name,
        scopes=record.scopes,
        allowed_tools=record.allowed_tools,
        expires_at=record.expires_at,
        policy_revision=record.policy_revision,
        replaced=record.replaced_by is not None,
    )


class AuthMiddleware:
    """Authenticates every HTTP request except the explicitly public paths.

    Paths for which ``speaks_jsonrpc(path)`` is true (the MCP endpoint and the OAuth
    discovery paths MCP clients probe) get their errors as JSON-RPC error objects.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: KeyVerifier,
        streams: StreamRegistry,
        public_paths: Collection[str],
        public_prefixes: tuple[str, ...] = (),
        speaks_jsonrpc: Callable[[str], bool],
        on_failure: FailureHook | None = None,
        on_success: SuccessHook | None = None,
        server_timing: bool = True,
    ) -> None:
        self.app = app
        self.server_timing = server_timing
        self.on_failure = on_failure
        self.on_success = on_success
        self.verifier = verifier
        self.streams = streams
        self.public_paths = frozenset(public_paths)
        # Apps under these prefixes authenticate on their own (the admin console's session cookie).
        self.public_prefixes = public_prefixes
        self.speaks_jsonrpc = speaks_jsonrpc

    def _is_public(self, path: str) -> bool:
        return path in self.public_paths or path.startswith(self.public_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or (scope["type"] == "http" and self._is_public(scope["path"])):
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # capgate serves no websockets: refuse rather than pass unauthenticated
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        jsonrpc = self.speaks_jsonrpc(scope["path"])
        presented: str | None = None
        timing = ServerTiming() if self.server_timing else None
        try:
            with self.verifier.observer.span("capgate.auth"):
                presented = extract_api_key(scope["headers"])
                client = scope.get("client")
                record = await self.verifier.verify(presented, source=client[0] if client else None)
            request = self.streams.open(record.key_id)
        except CapgateError as error:
            self.verifier.observer.refused(scope, error)
            if self.on_failure is not None:
                self.on_failure(scope, presented, error)
            await send_error(send, error, jsonrpc=jsonrpc)
            return
        if timing is not None:
            timing.auth = time.perf_counter() - timing.started
        if self.on_success is not None:
            self.on_success(scope, record)
        principal = principal_for(record)
        scope["user"] = principal
        scope["auth"] = AuthCredentials(list(record.scopes))
        sdk_token = auth_context_var.set(principal)
        timing_token = current_timing.set(timing)
        ended = "client_gone"  # unless run_tracked returns: the request's task was cancelled from outside
        try:
            ended = await run_tracked(
                self.app, scope, receive, send, request, jsonrpc=jsonrpc, registry=self.streams, timing=timing
            )
        finally:
            self.streams.close(request, ended)
            current_timing.reset(timing_token)
            auth_context_var.reset(sdk_token)
