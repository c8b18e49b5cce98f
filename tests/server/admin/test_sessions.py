"""Signing in and out of the console: cookie, session store, limits, CSRF and security headers."""

from __future__ import annotations

import httpx
from sqlalchemy import update
from sqlmodel import col

from auth.models import User
from tests.helpers import DEFAULT_PASSWORD
from tests.server.admin.conftest import ConsoleWorld, csrf_of


async def test_sign_in_sets_an_httponly_lax_session_cookie_and_lands_on_the_keys_page(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = world.console()
    response = await console.sign_in(owner.email)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/keys"
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("capgate_admin="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/admin" in cookie
    assert "Secure" not in cookie  # served over plain HTTP here; over HTTPS it is set
    page = await console.http.get("/admin/keys")
    assert page.status_code == 200 and owner.email in page.text


async def test_every_page_carries_a_strict_csp_and_refuses_framing(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = await world.signed_in(owner)
    for path in ("/admin/sign-in", "/admin/keys", "/admin/keys/new", "/admin/usage", "/admin/audit", "/admin/tools"):
        response = await console.http.get(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
        assert "<script>" not in response.text and " on" + "click=" not in response.text


async def test_pages_without_a_session_redirect_to_sign_in(world: ConsoleWorld) -> None:
    response = await world.console().http.get("/admin/usage")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/sign-in?next=/admin/usage"


async def test_wrong_password_is_refused_and_repeated_failures_are_limited_per_email(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = world.console()
    for _ in range(3):
        response = await console.sign_in(owner.email, "wrong password!!")
        assert response.status_code == 401 and "Invalid email or password" in response.text
    limited = await console.sign_in(owner.email, DEFAULT_PASSWORD)
    assert limited.status_code == 429 and "Too many failed sign-ins" in limited.text
    assert "retry-after" in limited.headers


async def test_sign_in_form_without_its_csrf_token_is_refused(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = world.console()
    await console.http.get("/admin/sign-in")
    response = await console.http.post("/admin/sign-in", data={"email": owner.email, "password": DEFAULT_PASSWORD})
    assert response.status_code == 403


async def test_sign_out_ends_this_session_and_sign_out_everywhere_ends_all(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    laptop, phone, tablet = [await world.signed_in(owner) for _ in range(3)]
    await laptop.post("/admin/sign-out", {})
    assert (await laptop.http.get("/admin/keys")).status_code == 303
    assert (await phone.http.get("/admin/keys")).status_code == 200
    await phone.post("/admin/sign-out", {"everywhere": "1"})
    assert (await tablet.http.get("/admin/keys")).status_code == 303
    assert (await phone.http.get("/admin/keys")).status_code == 303


async def test_a_session_expires(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = await world.signed_in(owner)
    world.clock.advance(8 * 3600 + 1)
    response = await console.http.get("/admin/keys")
    assert response.status_code == 303 and response.headers["location"].startswith("/admin/sign-in")


async def test_a_changed_role_applies_to_the_open_session(world: ConsoleWorld) -> None:
    organization, (admin, member) = await world.organization_with("admin", "member")
    console = await world.signed_in(admin)
    await world.keys.key(organization, name="someone-elses")
    assert "someone-elses" in (await console.http.get("/admin/keys")).text
    async with world.keys.sessions.begin() as session:
        await session.execute(update(User).where(col(User.id) == admin.id).values(role="member"))
    assert "someone-elses" not in (await console.http.get("/admin/keys")).text


async def test_sign_in_page_never_redirects_off_site(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = world.console()
    page = await console.http.get("/admin/sign-in?next=//evil.example/x")
    response = await console.http.post(
        "/admin/sign-in",
        data={"csrf": csrf_of(page.text), "email": owner.email, "password": DEFAULT_PASSWORD, "next": "//evil.example"},
    )
    assert response.headers["location"] == "/admin/keys"


async def test_over_https_the_session_cookie_is_secure(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = world.console()
    console.http.base_url = httpx.URL("https://capgate.test")
    response = await console.sign_in(owner.email)
    cookie = next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("capgate_admin="))
    assert "Secure" in cookie and "HttpOnly" in cookie


async def test_failed_sign_ins_are_also_limited_per_source_address(world: ConsoleWorld) -> None:
    _, (owner,) = await world.organization_with("owner")
    console = world.console()
    for index in range(5):
        response = await console.sign_in(f"nobody-{index}@example.com", "wrong password!!")
        assert response.status_code == 401
    limited = await console.sign_in(owner.email, DEFAULT_PASSWORD)
    assert limited.status_code == 429 and "Too many failed sign-ins from this address" in limited.text
