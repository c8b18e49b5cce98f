"""Connected accounts on the tools page: connect with a secret never shown again, test, disable."""

from __future__ import annotations

import re

from server.integrations import store
from tests.integrations.upstreams import TOKENS, Upstream, http_upstream  # noqa: F401  (fixture)
from tests.server.admin.conftest import ConsoleWorld


async def test_an_admin_connects_tests_and_disables_an_account_and_never_sees_its_secret_again(
    world: ConsoleWorld,
    http_upstream: Upstream,  # noqa: F811
) -> None:
    organization, (admin, member) = await world.organization_with("admin", "member")
    async with world.keys.sessions.begin() as session:
        await store.create_integration(
            session, organization_id=organization.id, integration_id=f"crm{organization.id[-4:].lower()}",
            title="CRM", transport="http", url=http_upstream.url, actor="test",
            url_from_operator=True,  # set up as the operator does (CLI): a loopback upstream is theirs to allow
        )  # fmt: skip
    secret = TOKENS["a1"]
    console = await world.signed_in(admin)
    connected = await console.post(
        "/admin/accounts", {"integration": f"crm{organization.id[-4:].lower()}", "label": "support", "secret": secret}
    )
    assert connected.status_code == 303
    page = (await console.http.get(connected.headers["location"])).text
    assert "support" in page and "Account connected" in page and secret not in page
    account_id = re.search(r'data-account="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    assert "_whoami</code>" in page  # the account's tools are on the page, switchable like any tool
    tested = await console.post(f"/admin/accounts/{account_id}/test", {})
    assert "done=tested" in tested.headers["location"]
    disabled = await console.post(f"/admin/accounts/{account_id}/status", {"enabled": "0"})
    assert "done=account-disabled" in disabled.headers["location"]
    page = (await console.http.get("/admin/tools")).text
    assert "disabled" in page and secret not in page
    member_console = await world.signed_in(member)
    refused = await member_console.post(f"/admin/accounts/{account_id}/status", {"enabled": "1"})
    assert refused.status_code == 403
    assert "Connect an account" not in (await member_console.http.get("/admin/tools")).text
