"""`capgate keys explain` and `capgate audit decisions`, in-process through typer's runner."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from typer.testing import CliRunner

from server.app import create_app
from server.cli.main import app
from tests.e2e.harness import capgate_env
from tests.helpers import make_settings
from tests.runtime_helpers import invoke


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = capgate_env(tmp_path)

    def invoke_cli(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args), env=env)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke_cli("db", "upgrade")
    invoke_cli("orgs", "create", "acme")
    return invoke_cli


def create_key(run, *args: str) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return dict(json.loads(run("keys", "create", "--org", "acme", "--name", args[0], *args[1:], "--json").output))


def test_keys_explain_says_which_rule_decides(run) -> None:  # type: ignore[no-untyped-def]
    reader = create_key(run, "reader", "--scope", "runtime:read", "--allowed-tool", "memory_*")
    explained = json.loads(run("keys", "explain", reader["id"], "memory_read", "--json").output)
    assert explained == {
        "keyId": reader["id"],
        "tool": "memory_read",
        "allowed": True,
        "reason": "allowed",
        "rule": "scope runtime grants read-only tools; allowedTools glob memory_* matched",
        "policyRevision": 1,
    }
    text = run("keys", "explain", reader["id"], "memory_write").output
    assert text.startswith(
        f"{reader['id']} may not call memory_write (tool_not_granted): scope runtime:read lacks write"
    )
    run("tools", "disable", "memory_read", "--org", "acme")
    disabled = json.loads(run("keys", "explain", reader["id"], "memory_read", "--json").output)
    assert (disabled["reason"], disabled["policyRevision"]) == ("tool_disabled", 2)
    run("keys", "revoke", reader["id"])
    revoked = json.loads(run("keys", "explain", reader["id"], "memory_ls", "--json").output)
    assert revoked["reason"] == "revoked_api_key" and revoked["rule"].startswith("key revoked at ")
    assert revoked["policyRevision"] == 3
    missing = run("keys", "explain", "AAAAAAAAAAAA", "memory_ls", ok=False)
    assert missing.output.strip() == "error: Unknown API key: AAAAAAAAAAAA"


def test_audit_decisions_lists_what_the_server_decided(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = create_key(run, "agent", "--scope", "runtime:read")

    async def serve_two_calls() -> None:
        application = create_app(make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'capgate.db'}"))
        async with LifespanManager(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as http:
                assert (await invoke(http, key["key"], "memory_ls", {"path": "/"})).status_code == 200
                assert (
                    await invoke(http, key["key"], "memory_write", {"path": "/a", "content": "x"})
                ).status_code == 404

    asyncio.run(serve_two_calls())  # stopping the server writes its last decision records
    rows = json.loads(run("audit", "decisions", "--org", "acme", "--key", key["id"], "--json").output)
    assert [(r["tool"], r["outcome"], r["reason"]) for r in rows] == [
        ("memory_write", "refused", "tool_not_granted"),
        ("memory_ls", "allowed", "allowed"),
    ]
    refused = json.loads(run("audit", "decisions", "--outcome", "refused", "--json").output)
    assert [r["tool"] for r in refused] == ["memory_write"]
    assert "tool_not_granted" in run("audit", "decisions").output
    assert "key.created" in run("audit", "--org", "acme").output  # the audit log itself is unchanged
    bad = run("audit", "decisions", "--since", "yesterday", ok=False)
    assert bad.output.strip().startswith("error: invalid time 'yesterday'")
