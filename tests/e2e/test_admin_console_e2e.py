"""The admin console in a real Chromium against a real `capgate serve`, and the keys it makes used over MCP."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass

import anyio
import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.deadlines import EVENTUALLY
from tests.e2e.browser import (
    accessibility_problems,
    chromium,
    new_page,
    overflows_horizontally,
    screenshot,
)
from tests.e2e.harness import CapgateProcess, poll_until, running_capgate
from tests.helpers import DEFAULT_PASSWORD, key_id_of

pytestmark = pytest.mark.e2e
SECRET = re.compile(r"^cg_(live|test)_[A-Za-z0-9]{50}$")
READ_ONLY_MEMORY_TOOLS = {"memory_ls", "memory_read", "memory_search"}


@dataclass(frozen=True)
class People:
    owner: str
    alice: str
    bob: str
    other_owner: str


@dataclass(frozen=True)
class Console:
    server: CapgateProcess
    people: People


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One server, organization "acme" (an owner and two members) and "globex" (an owner)."""
    with running_capgate(tmp_path_factory.mktemp("admin-console")) as server:
        tag = os.urandom(3).hex()
        emails = {}
        for org, users in (("acme", ("owner", "alice", "bob")), ("globex", ("other_owner",))):
            server.cli("orgs", "create", org)
            for name in users:
                email, role = f"{name}-{tag}@{org}.example", "owner" if "owner" in name else "member"
                emails[name] = email
                server.cli(
                    "users", "create", "--org", org, "--email", email, "--role", role, "--password-stdin",
                    input_text=DEFAULT_PASSWORD + "\n",
                )  # fmt: skip
        yield Console(server=server, people=People(**emails))


async def sign_in(page: Page, email: str) -> None:
    await page.goto("/admin/keys")
    assert page.url.endswith("/admin/sign-in?next=/admin/keys")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(DEFAULT_PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/admin/keys")


async def create_key(page: Page, name: str, *, scope: str, tools: list[str] | None = None) -> str:
    """Fills in the create form like a user and returns the key the page shows once."""
    await page.goto("/admin/keys/new")
    await page.get_by_role("textbox", name=re.compile("^Name")).fill(name)
    for checkbox in await page.locator("input[name=scope]").all():
        await checkbox.set_checked(await checkbox.get_attribute("value") == scope)
    if tools is not None:
        await page.get_by_label("Only the tools chosen below").check()
        for pattern in tools:
            await page.locator(f"input[name=tool][value='{pattern}']").check()
    await page.get_by_label("Expires after").select_option("30")
    await page.get_by_role("button", name="Create key").click()
    await page.wait_for_url(re.compile(r"/admin/keys/\w{12}$"))  # the page replaced its address: no re-post on reload
    secret = (await page.locator("#secret").inner_text()).strip()
    assert SECRET.match(secret)
    return secret


async def mcp_tool_names(url: str, secret: str) -> set[str]:
    from tests.mcp_helpers import mcp_client

    async with mcp_client(f"{url}/mcp", secret) as client:
        return {tool.name for tool in (await client.list_tools()).tools}


async def status_of(url: str, secret: str) -> int:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"{url}/capabilities", headers={"x-api-key": secret})).status_code


async def test_sign_in_create_a_read_only_memory_key_and_use_it_over_mcp(console: Console) -> None:
    url = console.server.url
    async with chromium() as browser:
        context, page = await new_page(browser, url)
        await context.grant_permissions(["clipboard-read", "clipboard-write"])
        await sign_in(page, console.people.alice)
        await page.goto("/admin/keys/new")
        await screenshot(page, "key-new")
        secret = await create_key(page, "alice-laptop", scope="runtime:read", tools=["memory_*"])
        await screenshot(page, "key-secret")
        await page.get_by_role("button", name="Copy key").click()
        await page.get_by_text("Copied.").wait_for()
        assert await page.evaluate("navigator.clipboard.readText()") == secret
        assert "claude mcp add --transport http capgate " + url + "/mcp" in await page.content()

        assert await mcp_tool_names(url, secret) == READ_ONLY_MEMORY_TOOLS

        await page.reload()
        assert secret not in await page.content()
        assert "alice-laptop" in await page.locator("h1").inner_text()
        await page.goto("/admin/keys")
        assert secret not in await page.content()
        row = page.locator(f"tr[data-key-id='{key_id_of(secret)}']")
        assert "runtime:read" in await row.inner_text() and "memory_*" in await row.inner_text()
        await screenshot(page, "keys")


async def test_rotate_and_revoke_from_the_page_then_usage_and_audit_show_it(console: Console) -> None:
    url = console.server.url
    async with chromium() as browser:
        _, page = await new_page(browser, url)
        await sign_in(page, console.people.owner)
        old = await create_key(page, "ci-runner", scope="runtime")
        for _ in range(3):
            assert await mcp_tool_names(url, old) >= READ_ONLY_MEMORY_TOOLS
        async with httpx.AsyncClient() as http:
            for path in ("/a.md", "/b.md"):
                response = await http.post(
                    f"{url}/api/runtime/tools/memory_write",
                    json={"input": {"path": path, "content": "x"}},
                    headers={"x-api-key": old},
                )
                assert response.status_code == 200

        await page.goto(f"/admin/keys/{key_id_of(old)}")
        await screenshot(page, "key-detail")
        await page.get_by_label("Old key keeps working for").select_option("0")
        await page.get_by_role("button", name="Rotate key").click()
        new = (await page.locator("#secret").inner_text()).strip()
        assert SECRET.match(new) and new != old
        assert await status_of(url, old) == 401
        assert await status_of(url, new) == 200

        await page.goto(f"/admin/keys/{key_id_of(new)}")
        await page.get_by_role("button", name="Revoke key").click()
        await page.get_by_text("Key revoked").wait_for()
        assert await status_of(url, new) == 401

        await page.goto(f"/admin/usage?key={key_id_of(old)}")
        bars = await page.locator("#daily-title").locator("xpath=..").locator("rect.bar").all()
        assert sum([int(await bar.get_attribute("data-value") or 0) for bar in bars]) == 2
        assert "memory_write" in await page.locator("#top-tools").inner_text()
        await screenshot(page, "usage")

        await page.goto("/admin/audit")
        events = await page.locator("#audit-events").inner_text()
        assert "key.rotated" in events and "key.revoked" in events and key_id_of(old) in events
        await screenshot(page, "audit")


async def test_also_close_open_streams_ends_an_open_mcp_stream(console: Console) -> None:
    from tests.mcp_helpers import mcp_client

    url = console.server.url
    first_progress = anyio.Event()
    ended = anyio.Event()
    outcome: list[str] = []

    async def long_call(secret: str) -> None:
        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            first_progress.set()

        try:
            async with mcp_client(f"{url}/mcp", secret, mode="legacy") as client:
                await client.call_tool(
                    "example_countdown", {"steps": 300, "interval_ms": 100}, progress_callback=on_progress
                )
                outcome.append("completed")
        except BaseException as error:  # noqa: BLE001 - whatever ends the call is the outcome
            outcome.append(type(error).__name__)
        finally:
            ended.set()

    async with chromium() as browser:
        _, page = await new_page(browser, url)
        await sign_in(page, console.people.owner)
        secret = await create_key(page, "leaked", scope="runtime")
        await page.goto(f"/admin/keys/{key_id_of(secret)}")
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(long_call, secret)
            with anyio.fail_after(EVENTUALLY):
                await first_progress.wait()
            await page.get_by_label("Also close open streams").check()
            await page.get_by_role("button", name="Revoke key").click()
            await page.get_by_text("open streams closed").wait_for()
            with anyio.fail_after(2):
                await ended.wait()
    assert outcome and outcome != ["completed"]


async def test_a_member_cannot_see_or_act_on_another_members_key(console: Console) -> None:
    url = console.server.url
    async with chromium() as browser:
        _, alice = await new_page(browser, url)
        await sign_in(alice, console.people.alice)
        secret = await create_key(alice, "alice-private", scope="runtime")
        key_id = key_id_of(secret)

        _, bob = await new_page(browser, url)
        await sign_in(bob, console.people.bob)
        assert "alice-private" not in await bob.content()
        response = await bob.goto(f"/admin/keys/{key_id}")
        assert response is not None and response.status == 404
        await bob.goto("/admin/keys")
        bobs_csrf = await bob.locator("input[name=csrf]").first.get_attribute("value")
        for action in ("revoke", "rotate"):
            replay = await bob.request.post(
                f"/admin/keys/{key_id}/{action}", form={"csrf": bobs_csrf or "", "close_streams": "1"}
            )
            assert replay.status == 404
        edit = await bob.request.post(
            f"/admin/keys/{key_id}", form={"csrf": bobs_csrf or "", "name": "bob-was-here", "scope": "runtime"}
        )
        assert edit.status == 404
        assert await status_of(url, secret) == 200


async def test_forged_form_without_csrf_token_is_403(console: Console) -> None:
    url = console.server.url
    async with chromium() as browser:
        _, page = await new_page(browser, url)
        await sign_in(page, console.people.owner)
        secret = await create_key(page, "csrf-target", scope="runtime")
        forged = await page.request.post(f"/admin/keys/{key_id_of(secret)}/revoke", form={"close_streams": "1"})
        assert forged.status == 403
        cross_site = await page.request.post(
            f"/admin/keys/{key_id_of(secret)}/revoke",
            form={"csrf": await page.locator("input[name=csrf]").first.get_attribute("value") or ""},
            headers={"Origin": "https://attacker.example"},
        )
        assert cross_site.status == 403
        assert await status_of(url, secret) == 200


async def test_a_session_of_one_organization_gets_404_on_another_organizations_key(console: Console) -> None:
    url = console.server.url
    async with chromium() as browser:
        _, acme = await new_page(browser, url)
        await sign_in(acme, console.people.owner)
        acme_key = key_id_of(await create_key(acme, "acme-only", scope="runtime"))
        _, globex = await new_page(browser, url)
        await sign_in(globex, console.people.other_owner)
        response = await globex.goto(f"/admin/keys/{acme_key}")
        assert response is not None and response.status == 404
        csrf = await globex.locator("input[name=csrf]").first.get_attribute("value") or ""
        assert (await globex.request.post(f"/admin/keys/{acme_key}/revoke", form={"csrf": csrf})).status == 404


PAGES = ["keys", "keys/new", "usage", "audit", "audit?view=decisions", "tools", "connect"]


async def check_pages(browser: Browser, url: str, email: str, *, width: int, suffix: str) -> dict[str, list[str]]:
    _, page = await new_page(browser, url, viewport={"width": width, "height": 900})
    console_errors: list[str] = []
    page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
    await page.goto("/admin/sign-in")
    await screenshot(page, f"sign-in{suffix}")
    problems = {"sign-in": await accessibility_problems(page)}
    await sign_in(page, email)
    for path in PAGES:
        await page.goto(f"/admin/{path}")
        await screenshot(page, path.replace("/", "-").replace("?view=", "-") + suffix)
        problems[path] = await accessibility_problems(page)
        if await overflows_horizontally(page):
            problems[path].append(f"page wider than a {width} px screen")
    # The CSP blocks inline script and style; a page relying on either would log a violation here.
    problems["console"] = console_errors
    return {path: found for path, found in problems.items() if found}


async def test_every_page_is_accessible_and_fits_a_narrow_screen(console: Console) -> None:
    async with chromium() as browser:
        email = console.people.owner
        assert await check_pages(browser, console.server.url, email, width=1280, suffix="") == {}
        assert await check_pages(browser, console.server.url, email, width=360, suffix="-narrow") == {}


async def test_an_owner_disables_a_tool_and_keys_stop_seeing_it(console: Console) -> None:
    url = console.server.url
    async with chromium() as browser:
        _, page = await new_page(browser, url)
        await sign_in(page, console.people.owner)
        secret = await create_key(page, "tools-watcher", scope="runtime")
        await page.goto("/admin/tools")
        await page.get_by_role("button", name="Disable memory_search").click()
        await page.get_by_text("Tool disabled.").wait_for()
        await anyio.to_thread.run_sync(
            lambda: poll_until(lambda: "memory_search" not in _capability_names(url, secret), timeout=EVENTUALLY)
        )
        await page.get_by_role("button", name="Enable memory_search").click()
        await page.get_by_text("Tool enabled.").wait_for()


def _capability_names(url: str, secret: str) -> set[str]:
    response = httpx.get(f"{url}/capabilities", headers={"x-api-key": secret})
    return {tool["name"] for tool in response.json()["capabilities"]}
