"""Key management over HTTP: POST /api-keys (HTTP Basic) and /api/keys (a keys:manage key)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from auth import store
from auth.basic import InvalidCredentials, parse_basic
from auth.errors import InvalidRequest
from auth.grants import (
    NotGrantable,
    Rights,
    check_grant,
    check_manageable,
    check_revocable,
    check_still_manager,
    inherit_allowed_tools,
)
from auth.lifecycle import UNSET, KeyChanges, rotate_api_key, update_api_key
from auth.models import ApiKey, Organization
from auth.principal import Principal
from server.key_events import key_changed_here
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


def rights_of(principal: Principal) -> Rights:
    return Rights.of_key(principal.key_scopes, principal.allowed_tools)


async def create_key(
    state: AppState, request: Request, *, organization: Organization, rights: Rights, actor: str
) -> JSONResponse:
    body = await read_model(request, KeyCreateBody, state.settings.max_request_body_bytes)
    scopes = body.scopes
    if "allowed_tools" in body.model_fields_set and body.allowed_tools is None:
        check_grant(rights, scopes, None)  # an explicit null asks for every tool
    allowed_tools = inherit_allowed_tools(rights, body.allowed_tools)
    check_grant(rights, scopes, allowed_tools)
    expires_at = resolve_expiry(body, state.now())
    async with state.sessions.begin() as session:
        created = await store.create_api_key(
            session,
            organization=organization,
            name=body.name,
            scopes=scopes,
            allowed_tools=allowed_tools,
            expires_at=expires_at,
            hasher=state.hasher,
            created_by=actor,
            source=source_of(request),
            max_active_keys=state.settings.max_active_keys_per_organization,
        )
    return JSONResponse({"key": created.secret, **public(state, created.record)}, status_code=201)


async def create_key_with_password(request: Request) -> JSONResponse:
    """POST /api-keys: a user's email and password (HTTP Basic) create a key for the user's organization."""
    state = app_state(request)
    try:
        user = await state.passwords.authenticate(parse_basic(request.scope["headers"]), source=source_of(request))
    except InvalidCredentials as error:
        state.failures.record(now=state.clock(), presented=None, reason=error.code, source=source_of(request))
        raise
    async with state.sessions() as session:
        organization = await store.get_organization(session, ref=user.organization_id)
    return await create_key(
        state, request, organization=organization, rights=Rights.of_role(user.role), actor=f"user:{user.email}"
    )


async def create_key_with_key(request: Request) -> JSONResponse:
    state = app_state(request)
    principal: Principal = request.user
    check_still_manager(principal.replaced)
    async with state.sessions() as session:
        organization = await store.get_organization(session, ref=principal.organization_id)
    return await create_key(
        state, request, organization=organization, rights=rights_of(principal), actor=f"key:{principal.key_id}"
    )


async def list_keys(request: Request) -> JSONResponse:
    state = app_state(request)
    async with state.sessions() as session:
        keys = await store.list_api_keys(session, organization_id=request.user.organization_id)
    return JSONResponse({"keys": [public(state, key) for key in keys]})


async def get_key(request: Request) -> JSONResponse:
    state = app_state(request)
    async with state.sessions() as session:
        key = await store.get_api_key(
            session, key_id=request.path_params["key_id"], organization_id=request.user.organization_id
        )
    return JSONResponse(public(state, key))


def _check_limit(field: str, value: int | None, ceiling: int, current: int | None) -> None:
    """A key may only lower a limit (its own or one it manages); raising one is the operator's."""
    if value is not None and not 1 <= value <= ceiling:
        message = f"{field} must be between 1 and {ceiling} (the organization's limit)"
        raise InvalidRequest(message, details={field: message})
    effective = ceiling if current is None else current
    if value is None and current is not None or value is not None and value > effective:
        raise NotGrantable(f"{field} can only be lowered with a key (now {effective}); the operator raises limits")


async def update_key(request: Request) -> JSONResponse:
    state = app_state(request)
    principal: Principal = request.user
    body = await read_model(request, KeyUpdateBody, state.settings.max_request_body_bytes)
    given = body.model_fields_set
    for required in ("name", "scopes"):
        if required in given and getattr(body, required) is None:
            raise InvalidRequest(f"{required} must not be null", details={required: "must not be null"})
    check_still_manager(principal.replaced)
    rights = rights_of(principal)
    changes = KeyChanges()
    async with state.sessions.begin() as session:
        key = await store.get_api_key(
            session, key_id=request.path_params["key_id"], organization_id=principal.organization_id
        )
        check_manageable(rights, key.scopes, key.allowed_tools)
        organization = await store.get_organization(session, ref=principal.organization_id)
        if "name" in given:
            changes.name = body.name
        if "scopes" in given:
            changes.scopes = body.scopes or []
            check_grant(rights, changes.scopes, key.allowed_tools)
        if "allowed_tools" in given:
            changes.allowed_tools = body.allowed_tools
            check_grant(rights, key.scopes if changes.scopes is UNSET else changes.scopes, body.allowed_tools)
        settings = state.settings
        if "rate_limit_per_second" in given:
            ceiling = organization.rate_limit_per_second or settings.rate_limit_per_second
            _check_limit("rateLimitPerSecond", body.rate_limit_per_second, ceiling, key.rate_limit_per_second)
            changes.rate_limit_per_second = body.rate_limit_per_second
        if "daily_quota" in given:
            ceiling = organization.daily_quota or settings.daily_quota
            _check_limit("dailyQuota", body.daily_quota, ceiling, key.daily_quota)
            changes.daily_quota = body.daily_quota
        key = await update_api_key(
            session,
            record=key,
            changes=changes,
            actor=f"key:{principal.key_id}",
            now=state.now(),
            source=source_of(request),
        )
    await key_changed_here(state, key.id)
    return JSONResponse(public(state, key))


async def rotate_key(request: Request) -> JSONResponse:
    state = app_state(request)
    principal: Principal = request.user
    body = await read_model(request, RotateBody, state.settings.max_request_body_bytes)
    if not 0 <= body.overlap_seconds <= MAX_OVERLAP_SECONDS:
        message = f"overlapSeconds must be between 0 and {MAX_OVERLAP_SECONDS}"
        raise InvalidRequest(message, details={"overlapSeconds": message})
    check_still_manager(principal.replaced)
    async with state.sessions.begin() as session:
        key = await store.get_api_key(
            session, key_id=request.path_params["key_id"], organization_id=principal.organization_id
        )
        check_manageable(rights_of(principal), key.scopes, key.allowed_tools)
        organization = await store.get_organization(session, ref=principal.organization_id)
        created = await rotate_api_key(
            session,
            record=key,
            organization=organization,
            overlap=timedelta(seconds=body.overlap_seconds),
            hasher=state.hasher,
            actor=f"key:{principal.key_id}",
            now=state.now(),
            source=source_of(request),
        )
    await key_changed_here(state, key.id)
    return JSONResponse(
        {"key": created.secret, **public(state, created.record), "replaces": public(state, key)}, status_code=201
    )


async def revoke_key(request: Request) -> JSONResponse:
    state = app_state(request)
    principal: Principal = request.user
    raw = request.query_params.get("terminateStreams", "false")
    terminate = _BOOLEAN.get(raw.lower())
    if terminate is None:
        message = "terminateStreams must be true or false"
        raise InvalidRequest(message, details={"terminateStreams": message})
    key_id = request.path_params["key_id"]
    if key_id != principal.key_id:  # a replaced key may still retire itself early
        check_still_manager(principal.replaced)
    async with state.sessions.begin() as session:
        target = await store.get_api_key(session, key_id=key_id, organization_id=principal.organization_id)
        check_revocable(principal.key_scopes, target.scopes)
        key = await store.revoke_api_key(
            session,
            key_id=key_id,
            actor=f"key:{principal.key_id}",
            organization_id=principal.organization_id,
            source=source_of(request),
            terminate_streams=terminate,
        )
    terminated = await key_changed_here(state, key.id, terminate_streams=terminate, revoked_at=key.updated_at)
    return JSONResponse({**public(state, key), "terminatedStreams": terminated})
