"""Key management over HTTP: POST /api-keys (HTTP Basic) and /api/keys (a keys:manage key).

The handlers only read the wire shapes; ``server.key_actions`` authorises and acts, as it does for the console.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from auth.basic import InvalidCredentials, parse_basic
from auth.errors import InvalidRequest
from auth.grants import Rights
from auth.lifecycle import KeyChanges
from auth.models import ApiKey
from auth.principal import Principal
from server import key_actions
from server.key_actions import Actor
from server.routes.bodies import read_model
from server.routes.key_wire import (
    MAX_OVERLAP_SECONDS,
    KeyCreateBody,
    KeyUpdateBody,
    RotateBody,
    key_public,
    resolve_expiry,
)
from server.state import AppState, app_state

_BOOLEAN = {"true": True, "false": False}


def source_of(request: Request) -> str | None:
    return request.client.host if request.client else None


def public(state: AppState, key: ApiKey) -> dict[str, Any]:
    return key_public(key, last_used_at=state.last_used.latest(key.id, key.last_used_at))


def actor_of(request: Request) -> Actor:
    principal: Principal = request.user
    return Actor(
        name=f"key:{principal.key_id}",
        organization_id=principal.organization_id,
        rights=Rights.of_key(principal.key_scopes, principal.allowed_tools),
        source=source_of(request),
        held_scopes=frozenset(principal.key_scopes),
        replaced=principal.replaced,
        own_key_id=principal.key_id,
    )


async def create_key(state: AppState, request: Request, actor: Actor) -> JSONResponse:
    body = await read_model(request, KeyCreateBody, state.settings.max_request_body_bytes)
    created = await key_actions.create_key(
        state,
        actor,
        name=body.name,
        scopes=body.scopes,
        allowed_tools=body.allowed_tools,
        expires_at=resolve_expiry(body, state.now()),
        every_tool_asked="allowed_tools" in body.model_fields_set and body.allowed_tools is None,
    )
    return JSONResponse({"key": created.secret, **public(state, created.record)}, status_code=201)


async def create_key_with_password(request: Request) -> JSONResponse:
    """POST /api-keys: a user's email and password (HTTP Basic) create a key for the user's organization."""
    state = app_state(request)
    source = source_of(request)
    try:
        credentials = parse_basic(request.scope["headers"])
    except InvalidCredentials as error:
        key_actions.count_failed_sign_in(state, error, source=source)
        raise
    user = await key_actions.sign_in(state, credentials, source=source)
    rights = Rights.of_role(user.role)
    actor = Actor(
        name=f"user:{user.email}",
        organization_id=user.organization_id,
        rights=rights,
        source=source,
        held_scopes=rights.scopes,
    )
    return await create_key(state, request, actor)


async def create_key_with_key(request: Request) -> JSONResponse:
    return await create_key(app_state(request), request, actor_of(request))


async def list_keys(request: Request) -> JSONResponse:
    state = app_state(request)
    keys = await key_actions.list_keys(state, actor_of(request))
    return JSONResponse({"keys": [public(state, key) for key in keys]})


async def get_key(request: Request) -> JSONResponse:
    state = app_state(request)
    key = await key_actions.load_key(state, actor_of(request), request.path_params["key_id"])
    return JSONResponse(public(state, key))


async def update_key(request: Request) -> JSONResponse:
    state = app_state(request)
    body = await read_model(request, KeyUpdateBody, state.settings.max_request_body_bytes)
    given = body.model_fields_set
    for required in ("name", "scopes"):
        if required in given and getattr(body, required) is None:
            raise InvalidRequest(f"{required} must not be null", details={required: "must not be null"})
    changes = KeyChanges()
    for name in ("name", "scopes", "allowed_tools", "rate_limit_per_second", "daily_quota"):
        if name in given:
            setattr(changes, name, getattr(body, name))
    key = await key_actions.change_key(state, actor_of(request), request.path_params["key_id"], changes)
    return JSONResponse(public(state, key))


async def rotate_key(request: Request) -> JSONResponse:
    state = app_state(request)
    body = await read_model(request, RotateBody, state.settings.max_request_body_bytes)
    if not 0 <= body.overlap_seconds <= MAX_OVERLAP_SECONDS:
        message = f"overlapSeconds must be between 0 and {MAX_OVERLAP_SECONDS}"
        raise InvalidRequest(message, details={"overlapSeconds": message})
    created, key = await key_actions.rotate_key(
        state, actor_of(request), request.path_params["key_id"], overlap=timedelta(seconds=body.overlap_seconds)
    )
    return JSONResponse(
        {"key": created.secret, **public(state, created.record), "replaces": public(state, key)}, status_code=201
    )


async def revoke_key(request: Request) -> JSONResponse:
    state = app_state(request)
    raw = request.query_params.get("terminateStreams", "false")
    terminate = _BOOLEAN.get(raw.lower())
    if terminate is None:
        message = "terminateStreams must be true or false"
        raise InvalidRequest(message, details={"terminateStreams": message})
    key, terminated = await key_actions.revoke_key(
        state, actor_of(request), request.path_params["key_id"], terminate_streams=terminate
    )
    return JSONResponse({**public(state, key), "terminatedStreams": terminated})
