"""client-configs/curl.sh against a real capgate process: capabilities, MCP tools/list by hand, a REST
tool call and its event stream, and what curl shows for a bad key."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.client_cases import MESSAGES, key_for
from tests.e2e.clients_toolchain import snippet
from tests.e2e.conftest import ClientGate

pytestmark = pytest.mark.e2e


def curl_script(gate: ClientGate, tmp_path: Path, key: str | None, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "curl.sh"
    script.write_text(snippet("curl", gate.server.url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")}
    if key is not None:
        env["CAPGATE_API_KEY"] = key
    return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=60)


def test_capabilities_list_the_keys_tools(client_gate: ClientGate, tmp_path: Path) -> None:
    ran = curl_script(client_gate, tmp_path, client_gate.key, "capabilities")
    assert ran.returncode == 0, ran.stderr
    body = json.loads(ran.stdout)
    assert {"memory_write", "memory_read"} <= {tool["name"] for tool in body["capabilities"]}
    assert (
        body["executionEventsUrlTemplate"] == f"{client_gate.server.url}/api/runtime/executions/{{executionId}}/events"
    )


def test_mcp_tools_list_by_hand(client_gate: ClientGate, tmp_path: Path) -> None:
    ran = curl_script(client_gate, tmp_path, client_gate.key, "tools-list")
    assert ran.returncode == 0, ran.stderr
    body = json.loads(ran.stdout)
    assert body["id"] == 1
    assert {"memory_write", "memory_read"} <= {tool["name"] for tool in body["result"]["tools"]}


def test_invoke_then_follow_its_event_stream_to_the_end(client_gate: ClientGate, tmp_path: Path) -> None:
    ran = curl_script(client_gate, tmp_path, client_gate.key, "all")
    assert ran.returncode == 0, ran.stderr
    events = [json.loads(line.removeprefix("data: ")) for line in ran.stdout.splitlines() if line.startswith("data: ")]
    assert [event["type"] for event in events] == ["started", "completed"]
    assert events[0]["data"]["toolName"] == "memory_write"
    assert events[1]["data"]["status"] == "succeeded"
    assert '"jsonrpc":"2.0","id":1,"result"' in ran.stdout.replace(" ", "")  # then tools/list by hand


@pytest.mark.parametrize("case", ["wrong", "revoked", "no-runtime"])
@pytest.mark.parametrize("action", ["capabilities", "tools-list"])
def test_curl_shows_capgates_message(client_gate: ClientGate, tmp_path: Path, case: str, action: str) -> None:
    ran = curl_script(client_gate, tmp_path, key_for(client_gate, case), action)
    assert ran.returncode == 22  # --fail-with-body: the body is printed, the exit code says HTTP error
    status = 403 if case == "no-runtime" else 401
    assert f"The requested URL returned error: {status}" in ran.stderr
    body = json.loads(ran.stdout)
    message = body["error"]["message"] if action == "tools-list" else body["error"]
    assert message == MESSAGES[case]


def test_curl_script_without_the_variable_stops_before_any_request(client_gate: ClientGate, tmp_path: Path) -> None:
    ran = curl_script(client_gate, tmp_path, None)
    assert ran.returncode == 1
    assert "CAPGATE_API_KEY: export CAPGATE_API_KEY first" in ran.stderr
