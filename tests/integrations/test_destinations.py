"""SSRF: a key with integrations:manage cannot point capgate at internal addresses, neither when it sets a
URL nor when capgate connects (DNS rebinding); the operator allows destinations explicitly."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from server.app import create_app
from server.integrations import store
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, factory_for, make_settings
from tests.integrations.upstreams import TOKENS, Upstream
from tests.runtime_helpers import headers

PUBLIC = "93.184.216.34"


@asynccontextmanager
async def capgate(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[httpx.AsyncClient, AppState, KeyFactory]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'capgate.db'}"
    await migrate(url)
    app = create_app(make_settings(tmp_path, url, **settings))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as client:
            yield client, app.state.capgate, factory_for(app)


def fake_dns(state: AppState, answer: Callable[[str], str | None]) -> None:
    """Names ending in .example resolve as ``answer`` says (no real DNS in tests); others as usual."""
    rules = state.integrations.pool.destinations
    assert rules is not None
    real = rules.resolver

    async def resolver(host: str, port: int) -> list[str]:
        found = answer(host) if host.endswith(".example") else None
        return [found] if found else await real(host, port)

    rules.resolver = resolver


async def test_internal_urls_set_over_http_are_a_400_naming_the_field_and_the_rule(tmp_path: Path) -> None:
    async with capgate(tmp_path) as (client, state, keys):
        fake_dns(state, lambda host: PUBLIC if host == "crm.example" else "10.0.0.7")
        manager = headers(await keys.key(await keys.organization(), scopes=["integrations:manage", "runtime"]))
        cases = {
            "http://127.0.0.1:8765/mcp": "127.0.0.1, a loopback address",
            "http://localhost:9/mcp": "a loopback address",
            "http://169.254.169.254/latest/meta-data": "169.254.169.254, a link-local address",
            "http://10.1.2.3/mcp": "10.1.2.3, a private address",
            "http://192.168.0.10:8080/mcp": "a private address",
            "http://0.0.0.0:9/mcp": "0.0.0.0, an unspecified address",
            "http://[::1]:9/mcp": "a loopback address",
            "http://[::ffff:127.0.0.1]:9/mcp": "a loopback address",
            "http://intranet.example/mcp": "intranet.example resolves to 10.0.0.7, a private address",
            "http://capgate.test/mcp": "capgate.test:80 is capgate's own address",
        }
        for url, rule in cases.items():
            refused = await client.post("/api/integrations", json={"id": "crm", "url": url}, headers=manager)
            assert refused.status_code == 400, (url, refused.text)
            body = refused.json()
            assert body["code"] == "invalid_request" and rule in body["details"]["url"], (url, body)
            assert "CAPGATE_INTEGRATION_ALLOWED_URLS" in body["details"]["url"]
        assert (await client.get("/api/integrations", headers=manager)).json() == {"integrations": []}

        created = await client.post(
            "/api/integrations", json={"id": "crm", "url": "https://crm.example/mcp"}, headers=manager
        )
        assert created.status_code == 201, created.text
        patched = await client.patch(
            "/api/integrations/crm", json={"url": "http://169.254.169.254/latest"}, headers=manager
        )
        assert patched.status_code == 400 and "link-local" in patched.json()["details"]["url"]
        assert (await client.get("/api/integrations/crm", headers=manager)).json()["url"] == "https://crm.example/mcp"


async def test_the_operator_allows_destinations_by_pattern(tmp_path: Path, http_upstream: Upstream) -> None:
    port = http_upstream.url.split(":")[2].split("/")[0]
    async with capgate(tmp_path, integration_allowed_urls=[f"127.0.0.1:{port}", "10.0.0.0/8"]) as (client, _, keys):
        org = await keys.organization()
        manager, user = (
            headers(await keys.key(org, scopes=["integrations:manage", "runtime"])),
            headers(await keys.key(org)),
        )
        for integration_id, url in (("crm", http_upstream.url), ("lan", "http://10.20.30.40/mcp")):
            created = await client.post("/api/integrations", json={"id": integration_id, "url": url}, headers=manager)
            assert created.status_code == 201, created.text
        other_port = await client.post(
            "/api/integrations", json={"id": "other", "url": "http://127.0.0.1:9/mcp"}, headers=manager
        )
        assert other_port.status_code == 400 and "loopback" in other_port.json()["details"]["url"]
        connected = await client.post(
            "/api/accounts", json={"integrationId": "crm", "label": "main", "credential": TOKENS["b"]}, headers=manager
        )
        assert connected.json()["status"] == "ok", connected.text
        names = {t["name"] for t in (await client.get("/capabilities", headers=user)).json()["capabilities"]}
        assert "crm_whoami" in names


async def test_a_name_that_resolves_elsewhere_at_connect_time_is_refused_there(
    tmp_path: Path, http_upstream: Upstream
) -> None:
    port = int(http_upstream.url.split(":")[2].split("/")[0])
    answers = iter([PUBLIC])  # the check when the URL is set sees a public address; every later lookup 127.0.0.1
    async with capgate(tmp_path) as (client, state, keys):
        fake_dns(state, lambda host: next(answers, "127.0.0.1"))
        org = await keys.organization()
        manager = headers(await keys.key(org, scopes=["integrations:manage", "runtime"]))
        url = f"http://rebind.example:{port}/mcp"
        assert (await client.post("/api/integrations", json={"id": "crm", "url": url}, headers=manager)).is_success
        connected = await client.post(
            "/api/accounts", json={"integrationId": "crm", "label": "main", "credential": TOKENS["b"]}, headers=manager
        )
        account = connected.json()
        tested = (await client.post(f"/api/accounts/{account['id']}/test", headers=manager)).json()
        assert tested["ok"] is False and tested["tools"] == []
        assert "refused: rebind.example resolves to 127.0.0.1, a loopback address" in tested["error"]

        # The operator (CLI) vouches for its own URLs: the same upstream, added by the operator, connects.
        async with state.sessions.begin() as session:
            await store.create_integration(
                session,
                organization_id=org.id,
                integration_id="ops",
                title="ops",
                transport="http",
                url=http_upstream.url,
                url_from_operator=True,
                actor="cli",
            )
        by_operator = await client.post(
            "/api/accounts", json={"integrationId": "ops", "label": "main", "credential": TOKENS["b"]}, headers=manager
        )
        assert by_operator.json()["status"] == "ok", by_operator.text
        assert by_operator.json()["tools"] and "whoami" in by_operator.json()["tools"]


async def test_a_redirect_to_an_address_that_is_not_allowed_is_not_followed(
    tmp_path: Path, http_upstream: Upstream
) -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's naming)
            self.send_response(307)
            self.send_header("Location", http_upstream.url)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST  # noqa: N815

        def log_message(self, *_args: object) -> None:
            return

    redirector = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    port = redirector.server_address[1]
    try:
        async with capgate(tmp_path, integration_allowed_urls=[f"127.0.0.1:{port}"]) as (client, _, keys):
            manager = headers(await keys.key(await keys.organization(), scopes=["integrations:manage", "runtime"]))
            url = f"http://127.0.0.1:{port}/mcp"
            assert (await client.post("/api/integrations", json={"id": "crm", "url": url}, headers=manager)).is_success
            body = {"integrationId": "crm", "label": "main", "credential": TOKENS["b"]}
            connected = (await client.post("/api/accounts", json=body, headers=manager)).json()
            tested = (await client.post(f"/api/accounts/{connected['id']}/test", headers=manager)).json()
            assert tested["ok"] is False and tested["tools"] == [] and "not followed" in tested["error"], tested
    finally:
        redirector.shutdown()
        redirector.server_close()
