"""A connected account's credential is sealed at rest and never comes back: not in the database, the logs,
the audit log or any response."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette

from server.app import create_app
from tests.conftest import migrate
from tests.helpers import KeyFactory, factory_for, make_settings
from tests.integrations.conftest import LOCAL_UPSTREAMS
from tests.integrations.upstreams import TOKENS, Upstream
from tests.runtime_helpers import headers, invoke
from tests.server.test_no_secrets_at_rest import dump_database


@pytest.fixture
async def db_app(tmp_path: Path, database_url: str) -> AsyncIterator[Starlette]:
    await migrate(database_url)
    app = create_app(make_settings(tmp_path, database_url, integration_allowed_urls=LOCAL_UPSTREAMS))
    async with LifespanManager(app):
        yield app


async def test_planted_credential_is_in_no_dump_log_audit_or_response(
    db_app: Starlette, http_upstream: Upstream, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    state = db_app.state.capgate
    keys: KeyFactory = factory_for(db_app)
    org = await keys.organization()
    manager = headers(await keys.key(org, scopes=["integrations:manage", "keys:manage", "runtime"]))
    planted, wrong = TOKENS["a1"], "planted-wrong-" + TOKENS["b"][::-1]
    responses: list[httpx.Response] = []

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=db_app), base_url="http://capgate.test") as client:

        async def call(method: str, url: str, **kwargs: object) -> httpx.Response:
            response = await client.request(method, url, headers=manager, **kwargs)  # type: ignore[arg-type]
            responses.append(response)
            return response

        created = await call("POST", "/api/integrations", json={"id": "crm", "url": http_upstream.url})
        assert created.status_code == 201, created.text
        account = await call(
            "POST", "/api/accounts", json={"integrationId": "crm", "label": "s", "credential": planted}
        )
        assert account.status_code == 201 and "whoami" in account.json()["tools"]
        account_id = account.json()["id"]
        rejected = await call("POST", "/api/accounts", json={"integrationId": "crm", "label": "w", "credential": wrong})
        assert rejected.status_code == 201
        tested = await call("POST", f"/api/accounts/{rejected.json()['id']}/test")
        assert tested.json()["ok"] is False and "HTTP 401" in tested.json()["error"]
        assert (await call("POST", f"/api/accounts/{account_id}/test")).json()["ok"] is True
        for url in ("/api/accounts", f"/api/accounts/{account_id}", "/api/integrations", "/api/integrations/crm"):
            assert (await call("GET", url)).status_code == 200
        noted = await invoke(
            client, manager["x-api-key"], "crm_create_note", {"text": "hi"}, connectedAccountId=account_id
        )
        responses.append(noted)
        assert noted.json()["isError"] is False
        await call("GET", f"/api/runtime/executions/{noted.json()['executionId']}")
        await call("PATCH", f"/api/accounts/{account_id}", json={"credential": TOKENS["a2"], "label": "renamed"})
        audit = await call("GET", "/api/audit")
        assert {"integration.created", "account.connected", "account.updated"} <= {
            event["action"] for event in audit.json()["events"]
        }

    dump = await dump_database(state)
    logs = caplog.text + "\n".join(str(record.__dict__) for record in caplog.records)
    for secret in (planted, wrong, TOKENS["a2"]):
        assert secret not in dump
        assert secret not in logs
        for response in responses:
            assert secret not in response.text, response.request.url
