"""Integrations end to end: a real capgate process, upstreams connected with the CLI, real MCP clients."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from tests.e2e.clients_toolchain import NODE_BIN, NODE_CLIENTS_BIN, require
from tests.e2e.harness import CapgateProcess, free_port, poll_until, running_capgate
from tests.integrations.upstreams import TOKENS, Upstream, start_http_upstream
from tests.mcp_helpers import leaf_errors, mcp_client
from tests.runtime_helpers import parse_sse

pytestmark = pytest.mark.e2e
EVERYTHING = NODE_CLIENTS_BIN / "mcp-server-everything"


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    server = start_http_upstream(tmp_path_factory.mktemp("upstream"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def capgate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CapgateProcess]:
    # The test upstreams listen on 127.0.0.1, which integrations set up over HTTP may use only when the
    # operator allows it: this one does.
    allowed = '["127.0.0.1:*"]'
    with running_capgate(tmp_path_factory.mktemp("capgate"), CAPGATE_INTEGRATION_ALLOWED_URLS=allowed) as server:
        yield server


def add_org(capgate: CapgateProcess) -> str:
    name = f"org-{secrets.token_hex(4)}"
    capgate.cli("orgs", "create", name)
    return name


def connect_account(capgate: CapgateProcess, org: str, integration: str, label: str, credential: str) -> str:
    """`capgate accounts connect` with the credential on stdin, as an operator would; returns the account id."""
    args = ("accounts", "connect", integration, "--org", org, "--label", label, "--secret-stdin", "--json")
    return str(json.loads(capgate.cli(*args, input_text=credential).stdout)[0]["id"])


def test_cli_connected_upstream_serves_keys_and_the_chosen_account_is_called(
    capgate: CapgateProcess, upstream: Upstream
) -> None:
    org = add_org(capgate)
    capgate.cli("integrations", "add", "crm", "--org", org, "--url", upstream.url)
    sales_id = connect_account(capgate, org, "crm", "sales", TOKENS["a1"])
    support_id = connect_account(capgate, org, "crm", "support", TOKENS["a2"])
    key = capgate.create_key(org)["key"]
    marker = secrets.token_hex(6)
    with httpx.Client(base_url=capgate.url, headers={"x-api-key": key}, timeout=30) as http:
        tools = {tool["name"]: tool for tool in http.get("/capabilities").json()["capabilities"]}
        assert [a["connectedAccountId"] for a in tools["crm_create_note"]["accounts"]] == [sales_id, support_id]
        ambiguous = http.post("/api/runtime/tools/crm_create_note", json={"input": {"text": marker}})
        assert ambiguous.status_code == 409 and ambiguous.json()["code"] == "account_required"
        body = {"input": {"text": marker}, "connectedAccountId": support_id}
        done = http.post("/api/runtime/tools/crm_create_note", json=body)
        assert done.json()["result"] == {"result": f"created: {marker}"}
    seen = [e for e in upstream.events() if e.get("tool") == "create_note" and e.get("text") == marker]
    assert [e["token"] for e in seen] == [TOKENS["a2"]]
    listed = capgate.cli_json("accounts", "list", "--org", org)
    assert {row["label"]: row["tools"] for row in listed}["sales"] >= 5
    log = capgate.log_text() + (capgate.data_dir / "capgate.db").read_bytes().decode("latin-1")
    assert TOKENS["a1"] not in log and TOKENS["a2"] not in log


def test_revoking_a_key_mid_call_lets_the_call_finish_and_the_next_request_gets_401(
    capgate: CapgateProcess, upstream: Upstream, tmp_path: Path
) -> None:
    org = add_org(capgate)
    capgate.cli("integrations", "add", "crm", "--org", org, "--url", upstream.url)
    connect_account(capgate, org, "crm", "main", TOKENS["b"])
    created = capgate.create_key(org)
    gate = tmp_path / f"gate-{secrets.token_hex(4)}"

    async def scenario() -> None:
        async with mcp_client(f"{capgate.url}/mcp", created["key"]) as mcp:
            await mcp.list_tools()  # the SDK lists after a call otherwise, which a revoked key cannot (CLIENT-NOTES)
            async with anyio.create_task_group() as tasks:
                results = []

                async def call() -> None:
                    results.append(await mcp.call_tool("crm_gated", {"marker": str(gate)}))

                tasks.start_soon(call)
                await anyio.to_thread.run_sync(upstream.wait_for, "started", str(gate))
                await anyio.to_thread.run_sync(lambda: capgate.cli("keys", "revoke", created["id"]))
                with httpx.Client(base_url=capgate.url, headers={"x-api-key": created["key"]}) as http:
                    await anyio.to_thread.run_sync(
                        lambda: poll_until(lambda: http.get("/capabilities").status_code == 401, timeout=2)
                    )
                gate.touch()
            assert results[0].is_error is False
            assert results[0].structured_content == {"result": f"released {gate.name}"}
            with pytest.raises(BaseException) as refused:
                await mcp.list_tools()
            assert any("revoked" in str(leaf) for leaf in leaf_errors(refused.value))

    anyio.run(scenario)


def running_commands(tag: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_stdio_upstream_gets_its_credential_in_env_restarts_after_a_crash_and_stops_with_the_server(
    tmp_path: Path,
) -> None:
    tag = f"tag-{secrets.token_hex(5)}"
    command = f"{sys.executable} -m tests.integrations.upstream_server stdio {tag}"
    with running_capgate(tmp_path / "capgate") as capgate:
        org = add_org(capgate)
        capgate.cli("integrations", "add", "local", "--org", org, "--command", command, "--env", "UPSTREAM_TOKEN")
        connect_account(capgate, org, "local", "me", TOKENS["a1"])
        key = capgate.create_key(org)["key"]
        with httpx.Client(base_url=capgate.url, headers={"x-api-key": key}, timeout=30) as http:

            def call(tool: str) -> dict[str, object]:
                response = http.post(f"/api/runtime/tools/{tool}", json={"input": {}})
                assert response.status_code == 200, response.text
                return dict(response.json())

            assert call("local_whoami")["result"] == {"result": f"token={TOKENS['a1']}"}
            first_pid = call("local_pid")["result"]
            assert running_commands(tag)
            crashed = call("local_crash")
            assert crashed["isError"] is True and "Upstream local" in str(crashed["error"])
            second_pid = call("local_pid")["result"]
            assert second_pid != first_pid
        for pid in running_commands(tag):  # the credential lives in the upstream's environment only
            assert TOKENS["a1"].encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    poll_until(lambda: not running_commands(tag), timeout=10)
    assert TOKENS["a1"] not in capgate.log_text()


@pytest.fixture(scope="module")
def everything(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    require(EVERYTHING)
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PATH": f"{NODE_BIN}:{os.environ.get('PATH', '')}"}
    log = (tmp_path_factory.mktemp("everything") / "everything.log").open("wb")
    process = subprocess.Popen([str(EVERYTHING), "streamableHttp"], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/mcp"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(10)
    log.close()


def test_server_everything_as_an_http_upstream_with_progress(capgate: CapgateProcess, everything: str) -> None:
    org = add_org(capgate)
    capgate.cli("integrations", "add", "everything", "--org", org, "--url", everything)
    connect_account(capgate, org, "everything", "ref", "unused-by-the-reference-server")
    key = capgate.create_key(org)["key"]
    with httpx.Client(base_url=capgate.url, headers={"x-api-key": key}, timeout=30) as http:
        names = {tool["name"] for tool in http.get("/capabilities").json()["capabilities"]}
        assert {"everything_echo", "everything_get-sum", "everything_trigger-long-running-operation"} <= names
        echoed = http.post("/api/runtime/tools/everything_echo", json={"input": {"message": "hello upstream"}})
        assert "hello upstream" in str(echoed.json()["result"])

    progress: list[float] = []

    async def run() -> str:
        async def on_progress(done: float, _total: float | None, _message: str | None) -> None:
            progress.append(done)

        async with mcp_client(f"{capgate.url}/mcp", key) as mcp:
            result = await mcp.call_tool(
                "everything_trigger-long-running-operation", {"duration": 1, "steps": 3}, progress_callback=on_progress
            )
            assert not result.is_error
            return str(result.meta["executionId"])

    execution_id = anyio.run(run)
    assert len(progress) == 3
    with httpx.Client(base_url=capgate.url, headers={"x-api-key": key}, timeout=30) as http:
        events = parse_sse(http.get(f"/api/runtime/executions/{execution_id}/events").text)
    assert [e["event"] for e in events].count("progress") == 3


async def test_connecting_an_account_over_http_pushes_list_changed_to_open_sessions(
    capgate: CapgateProcess, upstream: Upstream
) -> None:
    from tests.e2e.test_mcp_e2e import Recorder, wait_for

    org = add_org(capgate)
    runtime_key = capgate.create_key(org)["key"]
    manager = capgate.create_key(org, "--scope", "integrations:manage", "--scope", "runtime")["key"]
    recorder = Recorder()
    async with mcp_client(f"{capgate.url}/mcp", runtime_key, mode="legacy", message_handler=recorder.on_message) as mcp:
        assert not any(t.name.startswith("crm_") for t in (await mcp.list_tools()).tools)
        async with httpx.AsyncClient(base_url=capgate.url, headers={"x-api-key": manager}, timeout=30) as http:
            created = await http.post("/api/integrations", json={"id": "crm", "url": upstream.url})
            assert created.status_code == 201
            await wait_for(lambda: recorder.list_changed >= 1, timeout=5)
            connected = await http.post(
                "/api/accounts", json={"integrationId": "crm", "label": "main", "credential": TOKENS["b"]}
            )
            assert connected.status_code == 201 and "whoami" in connected.json()["tools"]
            await wait_for(lambda: recorder.list_changed >= 2, timeout=5)
        assert "crm_whoami" in {t.name for t in (await mcp.list_tools()).tools}
