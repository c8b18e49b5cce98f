"""The keys pages: list, create (secret shown once), details with edit, rotate and revoke.

Every action goes through ``server.key_actions``, the same functions the HTTP keys API uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from auth.errors import CapgateError, NotFound
from auth.lifecycle import KeyChanges
from auth.models import ApiKey
from auth.store import CreatedKey
from server import key_actions
from server.admin import key_forms
from server.admin.connect import key_snippets
from server.admin.pages_tools import organization_tools
from server.admin.sessions import SignedIn
from server.admin.web import Form, FormRejected, actor_for, checked_form, render, signed_in
from server.state import AppState, app_state

PAGE_SIZE = 50


def key_row(state: AppState, key: ApiKey) -> dict[str, Any]:
    return {
        "key": key,
        "status": key_forms.key_status(key, state.now()),
        "last_used_at": state.last_used.latest(key.id, key.last_used_at),
    }


async def _choices(state: AppState, user: SignedIn) -> list[key_forms.ToolChoice]:
    disabled = await state.runtime.switches.disabled(user.organization_id)
    return key_forms.tool_choices(await organization_tools(state, user.organization_id), disabled)


def _form_context(user: SignedIn, choices: list[key_forms.ToolChoice]) -> dict[str, Any]:
    return {
        "grantable_scopes": [(s, key_forms.SCOPE_LABELS.get(s, s)) for s in sorted(user.rights.scopes)],
        "choices": choices,
        "expiry_presets": key_forms.EXPIRY_PRESETS,
        "overlap_presets": key_forms.OVERLAP_PRESETS,
        "default_expiry": key_forms.DEFAULT_EXPIRY_DAYS,
        "default_overlap": key_forms.DEFAULT_OVERLAP_SECONDS,
    }


def _error_of(error: CapgateError) -> CapgateError:
    if isinstance(error, NotFound | FormRejected):
        raise error  # the console's error page, never a form with a message
    return error


async def keys_list(request: Request) -> Response:
    user = await signed_in(request)
    state = app_state(request)
    search = request.query_params.get("q", "").strip()[:200]
    raw_page = request.query_params.get("page", "1")
    page = int(raw_page) if raw_page.isdigit() and 0 < int(raw_page) < 100_000 else 1
    keys, total = await key_actions.page_keys(
        state, actor_for(request, user), search=search or None, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    context = {
        "rows": [key_row(state, key) for key in keys],
        "total": total,
        "search": search,
        "page": page,
        "pages": max(1, -(-total // PAGE_SIZE)),
        "active": "keys",
    }
    return render(request, "keys.html", context, user=user)


async def key_new(request: Request) -> Response:
    user = await signed_in(request)
    choices = await _choices(app_state(request), user)
    values = {
        "name": "",
        "scopes": ["runtime"],
        "tools_mode": "all",
        "tools": [],
        "tool_patterns": "",
        "expires_in_days": "",
    }
    context = {**_form_context(user, choices), "values": values, "error": None, "active": "keys"}
    return render(request, "key_new.html", context, user=user)


def _secret_page(
    request: Request, user: SignedIn, created: CreatedKey, *, replaces: ApiKey | None, status: int
) -> Response:
    state = app_state(request)
    context = {
        "created": created.record,
        "secret": created.secret,
        "snippets": key_snippets(state.public_base_url, created.secret),
        "replaces": replaces,
        "active": "keys",
    }
    return render(request, "key_secret.html", context, status=status, user=user)


async def key_create(request: Request) -> Response:
    user = await signed_in(request)
    form = await checked_form(request, user.csrf)
    state = app_state(request)
    values = {
        "name": form.get("name"),
        "scopes": form.getlist("scope"),
        "tools_mode": form.get("tools_mode", "all"),
        "tools": form.getlist("tool"),
        "tool_patterns": form.get("tool_patterns"),
        "expires_in_days": form.get("expires_in_days"),
    }
    try:
        created = await key_actions.create_key(
            state,
            actor_for(request, user),
            name=form.get("name"),
            scopes=key_forms.chosen_scopes(form),
            allowed_tools=key_forms.chosen_tools(form),
            expires_at=key_forms.chosen_expiry(form, state.now()),
        )
    except CapgateError as error:
        choices = await _choices(state, user)
        context = {**_form_context(user, choices), "values": values, "error": _error_of(error), "active": "keys"}
        return render(request, "key_new.html", context, status=error.status, user=user)
    return _secret_page(request, user, created, replaces=None, status=201)


async def _detail_page(
    request: Request, user: SignedIn, key: ApiKey, *, error: CapgateError | None = None, notice: str | None = None
) -> Response:
    state = app_state(request)
    choices = await _choices(state, user)
    context = {
        **_form_context(user, choices),
        **key_row(state, key),
        "values": key_forms.form_values(key, choices),
        "error": error,
        "notice": notice,
        "active": "keys",
    }
    return render(request, "key_detail.html", context, status=error.status if error else 200, user=user)


_NOTICES = {
    "saved": "Changes saved. They apply to the key's next request.",
    "revoked": "Key revoked: its next request gets 401.",
    "closed": "Key revoked and its open streams closed.",
}


async def key_detail(request: Request) -> Response:
    user = await signed_in(request)
    key = await key_actions.load_key(app_state(request), actor_for(request, user), request.path_params["key_id"])
    return await _detail_page(request, user, key, notice=_NOTICES.get(request.query_params.get("done", "")))


@dataclass(frozen=True, slots=True)
class Posted:
    """A checked form posted to one key's page, and who posted it."""

    user: SignedIn
    form: Form
    state: AppState
    actor: key_actions.Actor
    key_id: str

    async def page_with(self, request: Request, error: CapgateError) -> Response:
        """The key's page again, showing why the action was refused."""
        key = await key_actions.load_key(self.state, self.actor, self.key_id)
        return await _detail_page(request, self.user, key, error=_error_of(error))


async def posted(request: Request) -> Posted:
    user = await signed_in(request)
    form = await checked_form(request, user.csrf)
    state = app_state(request)
    return Posted(user, form, state, actor_for(request, user), request.path_params["key_id"])


async def key_update(request: Request) -> Response:
    post = await posted(request)
    form = post.form
    try:
        changes = KeyChanges(
            name=form.get("name"),
            scopes=key_forms.chosen_scopes(form),
            allowed_tools=key_forms.chosen_tools(form),
            rate_limit_per_second=key_forms.chosen_limit(form, "rate_limit_per_second"),
            daily_quota=key_forms.chosen_limit(form, "daily_quota"),
        )
        await key_actions.change_key(post.state, post.actor, post.key_id, changes)
    except CapgateError as error:
        return await post.page_with(request, error)
    return RedirectResponse(f"/admin/keys/{post.key_id}?done=saved", status_code=303)


async def key_rotate(request: Request) -> Response:
    post = await posted(request)
    try:
        overlap = key_forms.chosen_overlap(post.form)
        created, old = await key_actions.rotate_key(post.state, post.actor, post.key_id, overlap=overlap)
    except CapgateError as error:
        return await post.page_with(request, error)
    return _secret_page(request, post.user, created, replaces=old, status=201)


async def key_revoke(request: Request) -> Response:
    post = await posted(request)
    close_streams = post.form.checked("close_streams")
    await key_actions.revoke_key(post.state, post.actor, post.key_id, terminate_streams=close_streams)
    done = "closed" if close_streams else "revoked"
    return RedirectResponse(f"/admin/keys/{post.key_id}?done={done}", status_code=303)
