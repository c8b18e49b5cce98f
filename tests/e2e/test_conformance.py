"""The official MCP conformance suite (@modelcontextprotocol/conformance) against a real capgate process.

Its server scenarios run at both wires capgate serves: the dated 2025-11-25 one (initialize handshake,
sessions) and the stateless 2026-07-28 one (per-request ``_meta``) — and each with CAPGATE_MCP_FAST_PATH on
(plain stateless tools/list and tools/call answered by server/mcp/stateless.py) and off (all through the SDK).

The suite's runner has no header or auth option, so it talks to capgate through tests/e2e/header_proxy.py,
which adds the key. Most of its scenarios call fixture tools (``test_simple_text``, ``test_image_content``…)
or use prompts, resources, sampling, elicitation and logging, which capgate does not serve: those are in
SKIPPED, each with its reason; test_every_scenario_is_run_or_skipped_with_a_reason makes a suite upgrade
decide about new ones. Inside a scenario that runs, a check that needs such a fixture is in EXCUSED; every
other check must pass (a WARNING, a failed SHOULD, fails too), and an excused check that starts passing
fails the test so the list stays true.

Installed by tests/e2e/clients/install.sh into .cache/conformance (`make clients`; .ci/run does it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.deadlines import EVENTUALLY, SCALE
from tests.e2e.clients_toolchain import CACHE, NODE, ROOT, require
from tests.e2e.harness import free_port, poll_until, running_capgate

pytestmark = pytest.mark.e2e
SUITE = CACHE / "conformance" / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
DATED, STATELESS = "2025-11-25", "2026-07-28"

# What runs, at which wires (a scenario the suite does not define for a wire is not run there).
SCENARIOS: dict[str, list[str]] = {
    "server-initialize": [DATED],
    "server-session-lifecycle": [DATED],
    "ping": [DATED],
    "server-stateless": [STATELESS],
    "tools-list": [DATED, STATELESS],
    "dns-rebinding-protection": [DATED, STATELESS],
    "server-sse-multiple-streams": [DATED, STATELESS],
    "server-sse-polling": [DATED],
    "http-header-validation": [STATELESS],
    "caching": [STATELESS],
    "input-required-result-unsupported-methods": [STATELESS],
}

NO_FIXTURE = "calls the suite's fixture tool {}, which capgate does not have"
# (scenario, check id) -> why that check of a scenario that runs cannot pass against capgate.
EXCUSED: dict[tuple[str, str], str] = {
    ("server-stateless", "sep-2575-server-rejects-undeclared-capability"): NO_FIXTURE.format("test_missing_capability"),
    ("server-stateless", "sep-2575-missing-capability-http-400"): NO_FIXTURE.format("test_missing_capability"),
    ("server-stateless", "sep-2575-server-sends-tools-list-changed-on-subscription"): NO_FIXTURE.format(
        "test_trigger_tool_change (it mutates the tool list); capgate's own list_changed tests cover it"
    ),
    ("server-sse-polling", "incoming-sse-event"): NO_FIXTURE.format("test_reconnection"),
    ("caching", "sep-2549-prompts-list-caching-hints"): "capgate serves no prompts (prompts/list: -32601)",
    ("caching", "sep-2549-resources-list-caching-hints"): "capgate serves no resources (resources/list: -32601)",
    ("caching", "sep-2549-resources-templates-list-caching-hints"): "capgate serves no resources",
}

FIXTURE_TOOLS = "calls the suite's fixture tools, which capgate does not have (capgate's tools are its plugins')"
NO_PROMPTS = "prompts: capgate serves tools only"
NO_RESOURCES = "resources: capgate serves tools only"
MRTR = "input_required results (SEP-2322): no capgate tool asks the client for input; calls fixture tools"
TASKS = "tasks extension: capgate does not implement it"
SKILLS = "skills extension: capgate does not implement it"
# Every other scenario the suite lists, and why it does not apply to capgate.
SKIPPED: dict[str, str] = {
    "logging-set-level": "capgate declares no logging capability (logging/setLevel: -32601)",
    "completion-complete": "capgate declares no completions capability (completion/complete: -32601)",
    **dict.fromkeys(
        [
            "tools-call-simple-text",  # would pass: capgate's "Unknown tool" error result is text content
            "tools-call-image",
            "tools-call-audio",
            "tools-call-embedded-resource",
            "tools-call-mixed-content",
            "tools-call-error",  # would pass: the "Unknown tool" result has isError true
            "tools-call-with-progress",
            "json-schema-2020-12",
        ],
        FIXTURE_TOOLS,
    ),
    "tools-call-with-logging": "needs logging/setLevel and a fixture tool; capgate declares no logging capability",
    "tools-call-sampling": "sampling: capgate's tools never ask the client to sample",
    "tools-call-elicitation": "elicitation: capgate's tools never ask the client for input",
    "elicitation-sep1034-defaults": "elicitation: capgate's tools never ask the client for input",
    "elicitation-sep1330-enums": "elicitation: capgate's tools never ask the client for input",
    **dict.fromkeys(["resources-list", "resources-read-text", "resources-read-binary"], NO_RESOURCES),
    **dict.fromkeys(["resources-templates-read", "resources-subscribe", "resources-unsubscribe"], NO_RESOURCES),
    "sep-2164-resource-not-found": NO_RESOURCES,
    **dict.fromkeys(["prompts-list", "prompts-get-simple", "prompts-get-with-args"], NO_PROMPTS),
    **dict.fromkeys(["prompts-get-embedded-resource", "prompts-get-with-image"], NO_PROMPTS),
    "http-custom-header-server-validation": "needs a tool with x-mcp-header parameters; no installed tool has one",
    **dict.fromkeys(
        [
            "tasks-lifecycle",
            "tasks-capability-negotiation",
            "tasks-wire-fields",
            "tasks-request-state-removal",
            "tasks-mrtr-input",
            "tasks-request-headers",
            "tasks-dispatch-and-envelope",
            "tasks-status-notifications",
            "tasks-required-task-error",
            "tasks-mrtr-composition",
        ],
        TASKS,
    ),
    **dict.fromkeys(["sep-2640-skills-directory", "sep-2640-skills-enumeration", "sep-2640-skills-manifest"], SKILLS),
    **dict.fromkeys(
        [
            f"input-required-result-{name}"
            for name in (
                "basic-elicitation",
                "basic-sampling",
                "basic-list-roots",
                "request-state",
                "multiple-input-requests",
                "multi-round",
                "missing-input-response",
                "non-tool-request",
                "result-type",
                "tampered-state",
                "capability-check",
                "ignore-extra-params",
                "validate-input",
            )
        ],
        MRTR,
    ),
}


def suite(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")}
    command = [str(NODE), str(SUITE), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=90 * SCALE)


MODES = {"fast-path": "true", "sdk-only": "false"}  # CAPGATE_MCP_FAST_PATH


@contextmanager
def conformance_gate(data: Path, fast_path: str) -> Iterator[str]:
    """A capgate process with an organization and key, behind the key-adding proxy; yields the proxy's MCP URL."""
    with running_capgate(data, CAPGATE_MCP_FAST_PATH=fast_path) as server:
        server.cli("orgs", "create", "conformance")
        key = server.create_key("conformance")["key"]
        port = free_port()
        env = {**os.environ, "CAPGATE_PROXY_UPSTREAM_PORT": str(server.port), "CAPGATE_PROXY_KEY": key}
        proxy = subprocess.Popen([sys.executable, "-m", "tests.e2e.header_proxy", str(port)], cwd=ROOT, env=env)
        try:
            poll_until(lambda: answers(f"http://127.0.0.1:{port}/healthz"), timeout=EVENTUALLY)
            # The DNS-rebinding scenario needs a localhost URL; capgate accepts localhost Host headers.
            yield f"http://localhost:{port}/mcp"
        finally:
            proxy.terminate()
            proxy.wait(timeout=10)


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Both modes' servers, started side by side (each start is a few CLI processes)."""
    require(NODE, SUITE)
    with ExitStack() as stack, ThreadPoolExecutor(len(MODES)) as pool:
        urls = pool.map(
            lambda mode: stack.enter_context(conformance_gate(tmp_path_factory.mktemp(mode), MODES[mode])), MODES
        )
        yield dict(zip(MODES, urls, strict=True))


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def run_scenario(url: str, scenario: str, wire: str, out: Path) -> list[str]:
    """What went wrong in one scenario, as lines for the report: nothing when it conforms."""
    out.mkdir()
    args = ["--scenario", scenario, "--spec-version", wire, "--timeout", str(int(30_000 * SCALE)), "-o", str(out)]
    ran = suite("server", "--url", url, *args, cwd=out)
    found = sorted(out.glob(f"server-{scenario}-*/checks.json"))
    if not found:
        return [f"{scenario}: no results (exit {ran.returncode}): {ran.stdout[-800:]} {ran.stderr[-800:]}"]
    checks: list[dict[str, Any]] = json.loads(found[-1].read_text())
    problems = []
    for check in checks:
        excused = EXCUSED.get((scenario, check["id"]))
        if check["status"] in ("FAILURE", "WARNING") and excused is None:
            details = json.dumps(check.get("details"))[:1500]
            problems.append(f"{scenario} [{check['id']}] {check['status']}: {check.get('errorMessage')}; {details}")
        elif check["status"] == "SUCCESS" and excused is not None:
            problems.append(f"{scenario} [{check['id']}] passes now: remove it from EXCUSED ({excused})")
    return problems


@pytest.mark.timeout(300 * SCALE)  # both servers start in the first one
@pytest.mark.parametrize("wire", [DATED, STATELESS])
@pytest.mark.parametrize("mode", MODES)
def test_conformance_scenarios(gates: dict[str, str], mode: str, wire: str, tmp_path: Path) -> None:
    scenarios = [name for name, wires in SCENARIOS.items() if wire in wires]
    with ThreadPoolExecutor(3) as pool:
        reports = pool.map(lambda name: run_scenario(gates[mode], name, wire, tmp_path / name), scenarios)
    problems = [line for report in reports for line in report]
    assert not problems, "\n".join(problems)


def test_every_scenario_is_run_or_skipped_with_a_reason(tmp_path: Path) -> None:
    require(NODE, SUITE)
    listed = suite("list", "--server", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    names = {line.strip()[2:].split(" ")[0] for line in listed.stdout.splitlines() if line.strip().startswith("- ")}
    assert names, listed.stdout
    assert not set(SCENARIOS) & set(SKIPPED)
    assert names - set(SCENARIOS) - set(SKIPPED) == set(), "new scenarios: run them or skip them with a reason"
    assert (set(SCENARIOS) | set(SKIPPED)) - names == set(), "scenarios the suite no longer has"
    assert {scenario for scenario, _ in EXCUSED} <= set(SCENARIOS)
