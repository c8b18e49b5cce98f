"""The keys pages: what each role sees and may do, the secret shown once, CSRF on every form."""

from __future__ import annotations

import re

import pytest

from tests.helpers import key_id_of
from tests.server.admin.conftest import ConsoleWorld

SECRET = re.compile(r"cg_(?:live|test)_[A-Za-z0-9]{50}")


def new_key_form(name: str, **extra: str | list[str]) -> dict[str, str | list[str]]:
    return {"name": name, "scope": ["runtime:read"], "tools_mode": "some", "tool": ["memory_*"], **extra}


async def test_created_key_is_shown_once_and_works_with_only_what_was_granted(world: ConsoleWorld) -> None:
    _, (member,) = await world.organization_with("member")
    console = await world.signed_in(member)
    page = await console.post("/admin/keys", new_key_form("laptop"))
    assert page.status_code == 201
    secret = SECRET.search(page.text)
    assert secret, "the new key is on the page"
    assert "claude mcp add --transport http capgate http://capgate.test/mcp" in page.text
    capabilities = await world.app_http.get("/api/runtime/capabilities", headers={"x-api-key": secret.group()})
    names = {tool["name"] for tool in capabilities.json()["capabilities"]}
    assert names and all(name.startswith("memory_") for name in names)
    assert "memory_write" not in names and "memory_read" in names
    key_id = key_id_of(secret.group())
    for path in ("/admin/keys", f"/admin/keys/{key_id}"):
        later = await console.http.get(path)
        assert later.status_code == 200 and key_id in later.text and secret.group() not in later.text


async def test_a_member_is_offered_and_may_grant_only_the_runtime_scopes(world: ConsoleWorld) -> None:
    _, (member,) = await world.organization_with("member")
    console = await world.signed_in(member)
    form = (await console.http.get("/admin/keys/new")).text
    assert 'value="runtime:read"' in form and 'value="keys:manage"' not in form
    forged = await console.post("/admin/keys", new_key_form("sneaky", scope=["keys:manage"]))
    assert forged.status_code == 403 and "Not allowed to grant scope: keys:manage" in forged.text
    assert "sneaky" not in (await console.http.get("/admin/keys")).text


async def test_expiry_is_one_of_the_presets_of_at_most_a_year(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = await world.signed_in(owner)
    too_long = await console.post("/admin/keys", new_key_form("forever", expires_in_days="366"))
    assert too_long.status_code == 400 and "between 1 and 365 days" in too_long.text


async def test_a_form_without_the_csrf_token_is_refused(world: ConsoleWorld) -> None:
    organization, (owner,) = await world.organization_with("owner")
    key_id = key_id_of(await world.keys.key(organization))
    console = await world.signed_in(owner)
    forms: list[tuple[str, dict[str, str | list[str]]]] = [
        ("/admin/keys", new_key_form("forged")),
        (f"/admin/keys/{key_id}/revoke", {"close_streams": "1"}),
        (f"/admin/keys/{key_id}/rotate", {}),
        ("/admin/tools/memory_write", {"enabled": "0"}),
    ]
    for path, form in forms:
        assert (await console.post(path, form, csrf=False)).status_code == 403
    forged = await console.http.post(
        f"/admin/keys/{key_id}/revoke", data={"csrf": console.csrf}, headers={"origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    assert "active" in (await console.http.get(f"/admin/keys/{key_id}")).text


async def test_a_member_can_neither_see_nor_act_on_another_members_keys(world: ConsoleWorld) -> None:
    _, (alice, bob) = await world.organization_with("member", "member")
    alice_console, bob_console = await world.signed_in(alice), await world.signed_in(bob)
    created = await alice_console.post("/admin/keys", new_key_form("alice-key"))
    key_id = key_id_of(SECRET.search(created.text).group())  # type: ignore[union-attr]
    assert "alice-key" not in (await bob_console.http.get("/admin/keys")).text
    assert (await bob_console.http.get(f"/admin/keys/{key_id}")).status_code == 404
    for action in ("revoke", "rotate"):
        assert (await bob_console.post(f"/admin/keys/{key_id}/{action}", {"close_streams": "1"})).status_code == 404
    edit = await bob_console.post(f"/admin/keys/{key_id}", new_key_form("renamed-by-bob"))
    assert edit.status_code == 404
    own_view = (await alice_console.http.get(f"/admin/keys/{key_id}")).text
    assert "alice-key" in own_view and "renamed-by-bob" not in own_view and "badge status-active" in own_view


async def test_an_admin_sees_and_manages_every_key_of_the_organization(world: ConsoleWorld) -> None:
    organization, (admin, member) = await world.organization_with("admin", "member")
    member_console, admin_console = await world.signed_in(member), await world.signed_in(admin)
    created = await member_console.post("/admin/keys", new_key_form("member-key"))
    key_id = key_id_of(SECRET.search(created.text).group())  # type: ignore[union-attr]
    assert "member-key" in (await admin_console.http.get("/admin/keys")).text
    revoked = await admin_console.post(f"/admin/keys/{key_id}/revoke", {})
    assert revoked.status_code == 303
    assert "status-revoked" in (await member_console.http.get(f"/admin/keys/{key_id}")).text


async def test_a_session_of_one_organization_gets_404_on_another_organizations_key(world: ConsoleWorld) -> None:
    _, (owner_a,) = await world.organization_with("owner")
    organization_b, _ = await world.organization_with()
    key_b = key_id_of(await world.keys.key(organization_b, name="b-key"))
    console = await world.signed_in(owner_a)
    assert (await console.http.get(f"/admin/keys/{key_b}")).status_code == 404
    assert (await console.post(f"/admin/keys/{key_b}/revoke", {})).status_code == 404
    assert (await console.http.get(f"/admin/usage?key={key_b}")).status_code == 404
    assert (await console.http.get(f"/admin/audit?key={key_b}")).status_code == 200  # a filter: no rows, no 404
    assert "b-key" not in (await console.http.get(f"/admin/audit?key={key_b}")).text


async def test_edit_rotate_and_revoke_act_like_the_keys_api(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = await world.signed_in(owner)
    created = await console.post("/admin/keys", new_key_form("ci", scope=["runtime"]))
    old_secret = SECRET.search(created.text).group()  # type: ignore[union-attr]
    key_id = key_id_of(old_secret)
    saved = await console.post(
        f"/admin/keys/{key_id}", {**new_key_form("ci-renamed"), "rate_limit_per_second": "5", "daily_quota": ""}
    )
    assert saved.status_code == 303
    detail = (await console.http.get(saved.headers["location"])).text
    assert "ci-renamed" in detail and "5 requests/s" in detail and "Changes saved" in detail
    rotated = await console.post(f"/admin/keys/{key_id}/rotate", {"overlap_seconds": "0"})
    assert rotated.status_code == 201
    new_secret = SECRET.search(rotated.text).group()  # type: ignore[union-attr]
    assert new_secret != old_secret
    headers = {"x-api-key": old_secret}
    assert (await world.app_http.get("/api/runtime/capabilities", headers=headers)).status_code == 401
    await console.post(f"/admin/keys/{key_id_of(new_secret)}/revoke", {})
    headers = {"x-api-key": new_secret}
    assert (await world.app_http.get("/api/runtime/capabilities", headers=headers)).status_code == 401
    audit = (await console.http.get("/admin/audit")).text
    assert "key.rotated" in audit and "key.revoked" in audit and "key.updated" in audit


@pytest.mark.parametrize("path", ["/admin/keys/nope", "/admin/keys/AAAAAAAAAAAA"])
async def test_an_unknown_key_is_a_404_page(world: ConsoleWorld, path: str) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = await world.signed_in(owner)
    response = await console.http.get(path)
    assert response.status_code == 404 and "<h1>404" in response.text


async def test_the_key_list_is_paged_newest_first_and_searchable(world: ConsoleWorld) -> None:
    organization, (owner,) = await world.organization_with("owner")
    for index in range(55):
        await world.keys.key(organization, name=f"svc-{index:02d}")
    console = await world.signed_in(owner)
    first = (await console.http.get("/admin/keys")).text
    assert first.count("<tr data-key-id=") == 50 and "svc-54" in first and "svc-04" not in first
    assert "Page 1 of 2" in first and "Older keys" in first
    second = (await console.http.get("/admin/keys?page=2")).text
    assert second.count("<tr data-key-id=") == 5 and "svc-00" in second
    found = (await console.http.get("/admin/keys?q=SVC-5")).text
    assert found.count("<tr data-key-id=") == 5 and ": 5 matching" in found
    assert (await console.http.get("/admin/keys?q=%25")).status_code == 200
