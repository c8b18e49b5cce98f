"""The operator CLI, run in-process through typer's runner against a throwaway data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server.cli.main import app
from tests.e2e.harness import capgate_env


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    runner = CliRunner()
    env = capgate_env(tmp_path)

    def invoke(*args: str, input: str | None = None, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(app, list(args), env=env, input=input)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    invoke("db", "upgrade")
    return invoke


def test_init_prints_the_demo_key_once_with_ready_commands(run) -> None:  # type: ignore[no-untyped-def]
    first = run("init").output
    key_line = next(line for line in first.splitlines() if "CAPGATE_API_KEY=" in line)
    key = key_line.split("=", 1)[1].strip()
    assert key.startswith("cg_live_")
    assert 'curl -H "x-api-key: $CAPGATE_API_KEY" http://127.0.0.1:8765/capabilities' in first
    assert "claude mcp add --transport http capgate http://127.0.0.1:8765/mcp" in first
    second = run("init").output
    assert "cg_live_" not in second
    keys = json.loads(run("keys", "list", "--org", "demo", "--json").output)
    assert [k["name"] for k in keys] == ["demo key"]
    assert key not in run("keys", "list", "--org", "demo").output


def test_key_lifecycle_through_the_cli(run) -> None:  # type: ignore[no-untyped-def]
    run("orgs", "create", "acme")
    created = json.loads(
        run(
            "keys",
            "create",
            "--org",
            "acme",
            "--name",
            "ci",
            "--scope",
            "runtime:read",
            "--allowed-tool",
            "memory_*",
            "--expires-in",
            "30d",
            "--json",
        ).output
    )
    assert created["key"].startswith("cg_live_") and created["scopes"] == ["runtime:read"]
    assert created["allowedTools"] == ["memory_*"] and created["expiresAt"]
    shown = json.loads(run("keys", "show", created["id"], "--json").output)
    assert "key" not in shown and shown["prefix"] == created["key"][:12]
    assert "Revoked" in run("keys", "revoke", created["id"]).output
    assert json.loads(run("keys", "show", created["id"], "--json").output)["revokedAt"]
    assert json.loads(run("keys", "list", "--org", "acme", "--active", "--json").output) == []


def test_test_mode_organizations_get_test_keys(run) -> None:  # type: ignore[no-untyped-def]
    run("orgs", "create", "sandbox", "--test-mode")
    created = json.loads(run("keys", "create", "--org", "sandbox", "--name", "k", "--json").output)
    assert created["key"].startswith("cg_test_")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("keys", "create", "--org", "nope", "--name", "k"), "error: Unknown organization: nope"),
        (("keys", "create", "--org", "acme", "--name", "k", "--scope", "god"), "error: Unknown scope: 'god'"),
        (("keys", "create", "--org", "acme", "--name", "k", "--expires-in", "soon"), "error: invalid duration 'soon'"),
        (("orgs", "create", "acme"), "error: Organization 'acme' already exists"),
        (("keys", "revoke", "AAAAAAAAAAAA"), "error: Unknown API key: AAAAAAAAAAAA"),
    ],
)
def test_errors_are_one_clear_line_and_fail(run, args: tuple[str, ...], message: str) -> None:  # type: ignore[no-untyped-def]
    run("orgs", "create", "acme")
    result = run(*args, ok=False)
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)


def test_users_take_their_password_from_stdin_not_arguments(run) -> None:  # type: ignore[no-untyped-def]
    run("orgs", "create", "acme")
    run(
        "users",
        "create",
        "--org",
        "acme",
        "--email",
        "ops@acme.test",
        "--role",
        "admin",
        "--password-stdin",
        input="a long enough password\n",
    )
    users = json.loads(run("users", "list", "--org", "acme", "--json").output)
    assert [(u["email"], u["role"]) for u in users] == [("ops@acme.test", "admin")]
    assert "password" not in json.dumps(users)
    short = run(
        "users", "create", "--org", "acme", "--email", "x@acme.test", "--password-stdin", input="short\n", ok=False
    )
    assert "at least 12 characters" in short.output


def test_tables_are_for_people_and_json_speaks_the_http_api(run) -> None:  # type: ignore[no-untyped-def]
    run("orgs", "create", "acme")
    args = ("keys", "create", "--org", "acme", "--name", "agent", "--scope", "runtime", "--scope", "keys:manage")
    created = json.loads(run(*args, "--allowed-tool", "memory_*", "--allowed-tool", "example_*", "--json").output)
    assert {"allowedTools", "createdAt", "expiresAt", "revokedAt", "organizationId"} <= set(created)
    assert "allowed_tools" not in created and created["createdAt"].endswith("Z")
    listed = run("keys", "list", "--org", "acme").output
    assert "memory_*, example_*" in listed and "runtime, keys:manage" in listed
    assert "['" not in listed and "allowed tools" in listed
    shown = run("keys", "show", created["id"]).output
    assert "memory_*, example_*" in shown and "organization id" in shown and "['" not in shown
    revoked = run("keys", "revoke", created["id"]).output
    assert created["id"] in revoked and "revoked at" in revoked
    disabled = run("tools", "disable", "memory_write", "--org", "acme").output
    assert "read only" in disabled and "memory_write" in disabled and " no " in disabled
    switched = json.loads(run("tools", "enable", "memory_write", "--org", "acme", "--json").output)
    assert switched == [{**switched[0], "name": "memory_write", "enabled": True, "readOnly": False}]


def test_orgs_update_writes_an_audit_event(run) -> None:  # type: ignore[no-untyped-def]
    run("orgs", "create", "acme")
    updated = json.loads(run("orgs", "update", "acme", "--daily-quota", "900", "--json").output)
    assert updated[0]["dailyQuota"] == 900 and updated[0]["rateLimitPerSecond"] is None
    assert "Nothing to change." in run("orgs", "update", "acme", "--daily-quota", "900").output
    events = json.loads(run("audit", "--org", "acme", "--json").output)
    assert [(e["action"], e["actor"], e["details"]) for e in events] == [
        ("organization.updated", "cli", {"fields": ["daily_quota"]})
    ]
    assert events[0]["createdAt"].endswith("Z")


def test_db_purge_and_usage_commands(run) -> None:  # type: ignore[no-untyped-def]
    """Issue 14 item 6: the operator can purge now and see what each organization stores."""
    run("orgs", "create", "acme")
    purged = json.loads(run("db", "purge", "--json").output)
    assert set(purged) == {"executions", "events", "idempotency_records", "audit_events", "stream_events"}
    assert "Deleted" in run("db", "purge").output
    usage = json.loads(run("db", "usage", "--json").output)
    assert isinstance(usage, list)
