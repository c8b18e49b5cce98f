"""Usage, audit, tools and connect pages."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import anyio

from tests.deadlines import EVENTUALLY
from tests.helpers import key_id_of
from tests.server.admin.conftest import ConsoleWorld

BAR = re.compile(r'<rect class="bar" data-value="(\d+)" data-label="([^"]+)"')


def bars(html: str) -> dict[str, int]:
    return {label: int(value) for value, label in BAR.findall(html)}


async def test_usage_charts_count_the_calls_a_key_made_today(world: ConsoleWorld) -> None:
    organization, (owner,) = await world.organization_with("owner")
    secret = await world.keys.key(organization, name="busy")
    other = await world.keys.key(organization, name="quiet")
    for path in ("/a.md", "/b.md", "/c.md"):
        response = await world.app_http.post(
            "/api/runtime/tools/memory_write",
            json={"input": {"path": path, "content": "hello"}},
            headers={"x-api-key": secret},
        )
        assert response.status_code == 200, response.text
    await world.app_http.post(
        "/api/runtime/tools/memory_read", json={"input": {"path": "/a.md"}}, headers={"x-api-key": other}
    )
    console = await world.signed_in(owner)
    hour = f"{datetime.fromtimestamp(world.clock.now, UTC).hour:02d}"
    whole = (await console.http.get("/admin/usage")).text
    assert sum(bars(whole).values()) == 2 * 4  # four calls on the daily chart and four on the hourly one
    assert bars(whole)[hour] == 4
    assert re.search(r"<code>memory_write</code></td><td>3</td>", whole)
    one_key = (await console.http.get(f"/admin/usage?key={key_id_of(secret)}")).text
    assert bars(one_key)[hour] == 3 and "memory_read" not in one_key


async def test_a_members_usage_covers_only_their_own_keys(world: ConsoleWorld) -> None:
    organization, (member,) = await world.organization_with("member")
    secret = await world.keys.key(organization, name="not-mine")
    await world.app_http.post(
        "/api/runtime/tools/memory_read", json={"input": {"path": "/x.md"}}, headers={"x-api-key": secret}
    )
    console = await world.signed_in(member)
    page = (await console.http.get("/admin/usage")).text
    assert sum(bars(page).values()) == 0 and "not-mine" not in page


async def test_audit_is_filtered_by_event_and_key_and_paged(world: ConsoleWorld) -> None:
    organization, (owner,) = await world.organization_with("owner")
    console = await world.signed_in(owner)
    key_ids = []
    for index in range(55):
        created = await console.post("/admin/keys", {"name": f"k{index}", "scope": ["runtime"]})
        key_ids.append(re.search(r'data-replace-url="/admin/keys/(\w+)"', created.text).group(1))  # type: ignore[union-attr]
    await console.post(f"/admin/keys/{key_ids[0]}/revoke", {})
    revoked = (await console.http.get("/admin/audit?action=key.revoked")).text
    assert revoked.count("<code>key.revoked</code>") == 1 and "key.created</code>" not in revoked
    first_page = (await console.http.get("/admin/audit")).text
    assert first_page.count("<tr>") == 51 and "Older events" in first_page  # header row + 50 events
    older = re.search(r'href="(/admin/audit\?[^"]*before=\d+)"', first_page).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    second_page = (await console.http.get(older)).text
    assert "console.signed_in" in second_page and "Newest" in second_page
    one_key = (await console.http.get(f"/admin/audit?key={key_ids[0]}")).text
    assert one_key.count("<code>key.") == 2  # created and revoked


async def test_an_admin_switches_tools_and_a_member_only_sees_them(world: ConsoleWorld) -> None:
    organization, (admin, member) = await world.organization_with("admin", "member")
    secret = await world.keys.key(organization)
    admin_console = await world.signed_in(admin)
    response = await admin_console.post("/admin/tools/memory_write", {"enabled": "0"})
    assert response.status_code == 303
    capabilities = await world.app_http.get("/api/runtime/capabilities", headers={"x-api-key": secret})
    assert "memory_write" not in {tool["name"] for tool in capabilities.json()["capabilities"]}
    member_console = await world.signed_in(member)
    page = (await member_console.http.get("/admin/tools")).text
    assert "memory_write" in page and "Disable memory_write" not in page
    refused = await member_console.post("/admin/tools/memory_write", {"enabled": "1"})
    assert refused.status_code == 403
    await admin_console.post("/admin/tools/memory_write", {"enabled": "1"})
    assert "Disable memory_write" in (await admin_console.http.get("/admin/tools")).text


async def test_connect_page_fills_in_this_servers_url_and_no_key(world: ConsoleWorld) -> None:
    _, (member,) = await world.organization_with("member")
    console = await world.signed_in(member)
    page = (await console.http.get("/admin/connect")).text
    assert "http://capgate.test/mcp" in page and "Claude Code" in page and "Cursor" in page
    assert not re.search(r"cg_(live|test)_[A-Za-z0-9]{50}", page)


async def test_the_decisions_tab_lists_a_refusal_with_its_rule(world: ConsoleWorld) -> None:
    organization, (owner, member) = await world.organization_with("owner", "member")
    secret = await world.keys.key(organization, scopes=["runtime"])
    refused = await world.app_http.get("/api/keys", headers={"x-api-key": secret})
    assert refused.status_code == 403
    console = await world.signed_in(owner)
    path = f"/admin/audit?view=decisions&outcome=refused&key={key_id_of(secret)}"
    deadline = time.monotonic() + EVENTUALLY
    while "insufficient_scope" not in (page := (await console.http.get(path)).text):
        assert time.monotonic() < deadline, "the refusal never reached the decisions tab"
        await anyio.sleep(0.1)
    assert "<td>refused</td>" in page
    member_console = await world.signed_in(member)
    assert "Enter the id of one of your keys" in (await member_console.http.get("/admin/audit?view=decisions")).text
    assert (await member_console.http.get(path)).status_code == 404  # not their key
