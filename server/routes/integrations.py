"""Integrations and connected accounts over HTTP (scope ``integrations:manage``), for the key's own organization."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.grants import NotGrantable
from auth.scopes import INTEGRATIONS_MANAGE, RUNTIME, grants, is_read_only
from server.integrations import accounts, actions, store
from server.routes.bodies import read_model
from server.routes.integration_wire import (
    AccountCreateBody,
    AccountUpdateBody,
    IntegrationCreateBody,
    IntegrationUpdateBody,
    account_public,
    integration_public,
)
from server.routes.routing import ScopedRoute
from server.state import AppState, app_state

M = TypeVar("M", bound=BaseModel)


def _actor(request: Request) -> str:
    return f"key:{request.user.key_id}"


async def _read(request: Request, model: type[M]) -> M:
    return await read_model(request, model, app_state(request).settings.max_request_body_bytes)


async def list_integrations(request: Request) -> JSONResponse:
    async with app_state(request).sessions() as session:
        rows = await store.list_integrations(session, organization_id=request.user.organization_id)
    return JSONResponse({"integrations": [integration_public(row) for row in rows]})


def refuse_commands(transport: str | None, command: list[str] | None) -> None:
    """A stdio integration runs a command on the server: only an operator (the CLI) may set one."""
    if transport == "stdio" or command is not None:
        raise NotGrantable("stdio integrations run a command on the server; add them with the capgate CLI")


def check_adds_no_tools_beyond_own(request: Request) -> None:
    """Integrations, accounts and credentials decide which tools the organization has: only a key that may
    itself use every tool (scope runtime, no allowedTools) may change them, so none adds a tool it could
    not use or grant on."""
    scopes = request.user.key_scopes
    if not grants(scopes, RUNTIME) or is_read_only(scopes) or request.user.allowed_tools is not None:
        raise NotGrantable(
            "Adding or changing integrations and accounts needs a key with scope runtime and no allowedTools"
            " limit (it adds tools to the organization)"
        )


async def check_destination(state: AppState, url: str | None) -> None:
    if url is not None and state.integrations.pool.destinations is not None:
        await state.integrations.pool.destinations.check_url(url)


async def create_integration(request: Request) -> JSONResponse:
    state, body = app_state(request), await _read(request, IntegrationCreateBody)
    refuse_commands(body.transport, body.command)
    check_adds_no_tools_beyond_own(request)
    await check_destination(state, body.url)
    async with state.sessions.begin() as session:
        row = await store.create_integration(
            session,
            organization_id=request.user.organization_id,
            integration_id=body.id,
            title=body.title,
            transport=body.transport,
            url=body.url,
            command=body.command,
            credential_header=body.credential_header,
            credential_template=body.credential_template,
            credential_env=body.credential_env,
            timeout_seconds=body.timeout_seconds,
            actor=_actor(request),
        )
    await actions.account_changed(state, request.user.organization_id)
    return JSONResponse(integration_public(row), status_code=201)


async def get_integration(request: Request) -> JSONResponse:
    async with app_state(request).sessions() as session:
        row = await store.get_integration(
            session, organization_id=request.user.organization_id, integration_id=request.path_params["integration_id"]
        )
    return JSONResponse(integration_public(row))


async def update_integration(request: Request) -> JSONResponse:
    state, body = app_state(request), await _read(request, IntegrationUpdateBody)
    refuse_commands(None, body.command)
    check_adds_no_tools_beyond_own(request)
    await check_destination(state, body.url)
    async with state.sessions.begin() as session:
        row = await store.update_integration(
            session,
            organization_id=request.user.organization_id,
            integration_id=request.path_params["integration_id"],
            changes=body.model_dump(exclude_unset=True),
            actor=_actor(request),
        )
    await actions.account_changed(state, request.user.organization_id)
    return JSONResponse(integration_public(row))


async def delete_integration(request: Request) -> Response:
    state = app_state(request)
    async with state.sessions.begin() as session:
        gone = await accounts.list_accounts(
            session, organization_id=request.user.organization_id, integration_id=request.path_params["integration_id"]
        )
        await store.delete_integration(
            session,
            organization_id=request.user.organization_id,
            integration_id=request.path_params["integration_id"],
            actor=_actor(request),
        )
    for account in gone:
        state.integrations.pool.forget(account.id)
    await actions.account_changed(state, request.user.organization_id)
    return Response(status_code=204)


async def list_accounts(request: Request) -> JSONResponse:
    async with app_state(request).sessions() as session:
        rows = await accounts.list_accounts(
            session,
            organization_id=request.user.organization_id,
            integration_id=request.query_params.get("integrationId") or None,
        )
    return JSONResponse({"accounts": [account_public(row) for row in rows]})


async def connect_account(request: Request) -> JSONResponse:
    state, body = app_state(request), await _read(request, AccountCreateBody)
    check_adds_no_tools_beyond_own(request)
    row = await actions.connect(
        state,
        organization_id=request.user.organization_id,
        integration_id=body.integration_id,
        label=body.label,
        credential=body.credential,
        actor=_actor(request),
    )
    return JSONResponse(account_public(row), status_code=201)


async def get_account(request: Request) -> JSONResponse:
    async with app_state(request).sessions() as session:
        row = await accounts.get_account(
            session, organization_id=request.user.organization_id, account_id=request.path_params["account_id"]
        )
    return JSONResponse(account_public(row))


async def update_account(request: Request) -> JSONResponse:
    state, body = app_state(request), await _read(request, AccountUpdateBody)
    check_adds_no_tools_beyond_own(request)
    row = await actions.update(
        state,
        organization_id=request.user.organization_id,
        account_id=request.path_params["account_id"],
        actor=_actor(request),
        label=body.label,
        status=body.status,
        credential=body.credential,
    )
    return JSONResponse(account_public(row))


async def delete_account(request: Request) -> Response:
    state = app_state(request)
    account_id = request.path_params["account_id"]
    async with state.sessions.begin() as session:
        await accounts.delete_account(
            session, organization_id=request.user.organization_id, account_id=account_id, actor=_actor(request)
        )
    await actions.account_changed(state, request.user.organization_id, account_id)
    return Response(status_code=204)


async def test_account(request: Request) -> JSONResponse:
    """Connects to the account's upstream and lists its tools (keeping the listing)."""
    result = await actions.test(
        app_state(request), organization_id=request.user.organization_id, account_id=request.path_params["account_id"]
    )
    return JSONResponse({"ok": result.ok, "error": result.error, "tools": result.tools})


def integration_routes() -> list[Route]:
    manage = INTEGRATIONS_MANAGE
    return [
        ScopedRoute("/api/integrations", list_integrations, scope=manage),
        ScopedRoute("/api/integrations", create_integration, scope=manage, methods=["POST"]),
        ScopedRoute("/api/integrations/{integration_id}", get_integration, scope=manage),
        ScopedRoute("/api/integrations/{integration_id}", update_integration, scope=manage, methods=["PATCH"]),
        ScopedRoute("/api/integrations/{integration_id}", delete_integration, scope=manage, methods=["DELETE"]),
        ScopedRoute("/api/accounts", list_accounts, scope=manage),
        ScopedRoute("/api/accounts", connect_account, scope=manage, methods=["POST"]),
        ScopedRoute("/api/accounts/{account_id}", get_account, scope=manage),
        ScopedRoute("/api/accounts/{account_id}", update_account, scope=manage, methods=["PATCH"]),
        ScopedRoute("/api/accounts/{account_id}", delete_account, scope=manage, methods=["DELETE"]),
        ScopedRoute("/api/accounts/{account_id}/test", test_account, scope=manage, methods=["POST"]),
    ]
