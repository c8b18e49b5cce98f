"""Key management as the HTTP keys API and the admin console both do it: authorise, call the store, tell the caches.

The routes and the console only turn their input (JSON bodies, HTML forms) into these calls;
who may do what is decided here and in ``auth.grants``, and the data functions in
``auth.store`` / ``auth.lifecycle`` validate and audit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from auth import store
from auth.basic import BasicCredentials, InvalidCredentials
from auth.errors import InvalidRequest, NotFound
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
from auth.models import ApiKey, Organization, User
from server.key_events import key_changed_here
from server.state import AppState


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, with which rights, from where; ``own_keys_of`` limits them to keys they created.

    A key acting holds its raw scopes (``held_scopes``: only ``*`` revokes ``*``), may be one that a
    rotation ``replaced`` (it then manages nothing but may retire itself), and is ``own_key_id``.
    """

    name: str
    organization_id: str
    rights: Rights
    source: str | None
    own_keys_of: str | None = None
    held_scopes: frozenset[str] = frozenset()
    replaced: bool = False
    own_key_id: str | None = None

    def may_see(self, key: ApiKey) -> bool:
        return self.own_keys_of is None or key.created_by == self.own_keys_of


def count_failed_sign_in(state: AppState, error: InvalidCredentials, *, source: str | None) -> None:
    state.failures.record(now=state.clock(), presented=None, reason=error.code, source=source)


async def sign_in(state: AppState, credentials: BasicCredentials, *, source: str | None) -> User:
    """A user's email and password, with the per-email limits; failures go to the audit tally."""
    try:
        return await state.passwords.authenticate(credentials, source=source)
    except InvalidCredentials as error:
        count_failed_sign_in(state, error, source=source)
        raise


async def _visible_key(session: AsyncSession, actor: Actor, key_id: str) -> ApiKey:
    """A key of the actor's organization that the actor may see; anything else is 404, never 403."""
    key = await store.get_api_key(session, key_id=key_id, organization_id=actor.organization_id)
    if not actor.may_see(key):
        raise NotFound(f"Unknown API key: {key_id}")
    return key


async def load_key(state: AppState, actor: Actor, key_id: str) -> ApiKey:
    async with state.sessions() as session:
        return await _visible_key(session, actor, key_id)


async def list_keys(state: AppState, actor: Actor) -> list[ApiKey]:
    async with state.sessions() as session:
        keys = await store.list_api_keys(session, organization_id=actor.organization_id)
    return [key for key in keys if actor.may_see(key)]


async def page_keys(
    state: AppState, actor: Actor, *, search: str | None, offset: int, limit: int
) -> tuple[list[ApiKey], int]:
    async with state.sessions() as session:
        return await store.page_api_keys(
            session,
            organization_id=actor.organization_id,
            created_by=actor.own_keys_of,
            search=search,
            offset=offset,
            limit=limit,
        )


async def create_key(
    state: AppState,
    actor: Actor,
    *,
    name: str,
    scopes: Sequence[str],
    allowed_tools: Sequence[str] | None,
    expires_at: datetime | None,
    every_tool_asked: bool = False,
) -> store.CreatedKey:
    """``every_tool_asked``: the caller said "all tools" outright, rather than leaving tools unsaid."""
    check_still_manager(actor.replaced)
    cleaned = list(scopes)  # cleaned by the data function; check_grant compares them as they will be stored
    if every_tool_asked:
        check_grant(actor.rights, cleaned, None)
    tools = inherit_allowed_tools(actor.rights, allowed_tools)
    check_grant(actor.rights, cleaned, tools)
    async with state.sessions.begin() as session:
        organization = await store.get_organization(session, ref=actor.organization_id)
        return await store.create_api_key(
            session,
            organization=organization,
            name=name,
            scopes=cleaned,
            allowed_tools=tools,
            expires_at=expires_at,
            hasher=state.hasher,
            created_by=actor.name,
            source=actor.source,
            max_active_keys=state.settings.max_active_keys_per_organization,
        )


def _check_limit(field: str, value: int | None, ceiling: int, current: int | None) -> None:
    """A key may only lower a limit (its own or one it manages); raising one is the operator's."""
    if value is not None and not 1 <= value <= ceiling:
        message = f"{field} must be between 1 and {ceiling} (the organization's limit)"
        raise InvalidRequest(message, details={field: message})
    effective = ceiling if current is None else current
    if value is None and current is not None or value is not None and value > effective:
        raise NotGrantable(f"{field} can only be lowered with a key (now {effective}); the operator raises limits")


async def change_key(state: AppState, actor: Actor, key_id: str, changes: KeyChanges) -> ApiKey:
    """Applies ``changes`` (UNSET fields stay); the actor must hold the key's rights and any new ones."""
    check_still_manager(actor.replaced)
    async with state.sessions.begin() as session:
        key = await _visible_key(session, actor, key_id)
        check_manageable(actor.rights, key.scopes, key.allowed_tools)
        if changes.scopes is not UNSET:
            changes.scopes = list(changes.scopes or [])
            check_grant(actor.rights, changes.scopes, key.allowed_tools)
        if changes.allowed_tools is not UNSET:
            scopes = key.scopes if changes.scopes is UNSET else changes.scopes
            check_grant(actor.rights, scopes, changes.allowed_tools)
        organization = await store.get_organization(session, ref=actor.organization_id)
        settings = state.settings
        if changes.rate_limit_per_second is not UNSET:
            ceiling = organization.rate_limit_per_second or settings.rate_limit_per_second
            _check_limit("rateLimitPerSecond", changes.rate_limit_per_second, ceiling, key.rate_limit_per_second)
        if changes.daily_quota is not UNSET:
            ceiling = organization.daily_quota or settings.daily_quota
            _check_limit("dailyQuota", changes.daily_quota, ceiling, key.daily_quota)
        key = await update_api_key(
            session, record=key, changes=changes, actor=actor.name, now=state.now(), source=actor.source
        )
    await key_changed_here(state, key.id)
    return key


async def rotate_key(
    state: AppState, actor: Actor, key_id: str, *, overlap: timedelta
) -> tuple[store.CreatedKey, ApiKey]:
    """The new key (secret shown once) and the old one, which now ends after ``overlap``."""
    check_still_manager(actor.replaced)
    async with state.sessions.begin() as session:
        key = await _visible_key(session, actor, key_id)
        check_manageable(actor.rights, key.scopes, key.allowed_tools)
        organization: Organization = await store.get_organization(session, ref=actor.organization_id)
        created = await rotate_api_key(
            session,
            record=key,
            organization=organization,
            overlap=overlap,
            hasher=state.hasher,
            actor=actor.name,
            now=state.now(),
            source=actor.source,
        )
    await key_changed_here(state, key.id)
    return created, key


async def revoke_key(state: AppState, actor: Actor, key_id: str, *, terminate_streams: bool) -> tuple[ApiKey, int]:
    """The revoked key and how many of its open streams this process closed."""
    if key_id != actor.own_key_id:  # a replaced key may still retire itself early
        check_still_manager(actor.replaced)
    async with state.sessions.begin() as session:
        target = await _visible_key(session, actor, key_id)
        check_revocable(actor.held_scopes, target.scopes)
        key = await store.revoke_api_key(
            session,
            key_id=key_id,
            actor=actor.name,
            organization_id=actor.organization_id,
            source=actor.source,
            terminate_streams=terminate_streams,
        )
    terminated = await key_changed_here(state, key.id, terminate_streams=terminate_streams, revoked_at=key.updated_at)
    return key, terminated
