"""`capgate keys rotate`, `keys update`, `orgs update` and `audit`, run as a user would (typer's runner)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from server.cli.main import app

runner = CliRunner()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CAPGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CAPGATE_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'capgate.db'}")
    monkeypatch.setenv("CAPGATE_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("CAPGATE_ARGON2_MEMORY_COST", "1024")
    monkeypatch.chdir(tmp_path)
    assert run("db", "upgrade").exit_code == 0


def run(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_rotate_update_and_audit(cli_env: None) -> None:
    org = run_json("orgs", "create", "acme")[0]["id"]
    key = run_json("keys", "create", "--org", "acme", "--name", "agent")
    rotated = run_json("keys", "rotate", key["id"], "--overlap", "30m")
    assert rotated["key"].startswith("cg_live_") and rotated["id"] != key["id"]
    assert rotated["name"] == "agent" and rotated["replaces"]["expiresAt"] is not None

    updated = run_json(
        "keys", "update", rotated["id"], "--name", "agent-2", "--scope", "runtime:read",
        "--allowed-tool", "memory_*", "--rate-limit-per-second", "5", "--daily-quota", "50",
    )  # fmt: skip
    assert updated["changed"] == ["allowedTools", "dailyQuota", "name", "rateLimitPerSecond", "scopes"]
    assert (updated["name"], updated["scopes"], updated["allowedTools"]) == ("agent-2", ["runtime:read"], ["memory_*"])
    cleared = run_json("keys", "update", rotated["id"], "--all-tools", "--clear-limits")
    assert cleared["changed"] == ["allowedTools", "dailyQuota", "rateLimitPerSecond"]

    limits = run_json("orgs", "update", "acme", "--rate-limit-per-second", "20", "--daily-quota", "900")[0]
    assert (limits["rateLimitPerSecond"], limits["dailyQuota"]) == (20, 900)

    events = run_json("audit", "--org", org)
    assert [e["action"] for e in events] == [
        "organization.updated", "key.updated", "key.updated", "key.created", "key.rotated", "key.created",
    ]  # fmt: skip
    assert events[0]["details"] == {"fields": ["daily_quota", "rate_limit_per_second"]}
    assert all(e["actor"] == "cli" for e in events)
    assert rotated["key"][20:52] not in json.dumps(events)
    assert "key.rotated" in run("audit", "--action", "key.rotated").output


def test_bad_input_gets_a_one_line_error(cli_env: None) -> None:
    run_json("orgs", "create", "acme")
    key = run_json("keys", "create", "--org", "acme", "--name", "agent")
    result = run("keys", "update", key["id"], "--scope", "admin")
    assert result.exit_code == 1
    assert "Unknown scope: 'admin'" in result.output
    result = run("keys", "rotate", "AAAAAAAAAAAA")
    assert result.exit_code == 1 and "Unknown API key: AAAAAAAAAAAA" in result.output
    result = run("keys", "rotate", key["id"], "--overlap", "soon")
    assert result.exit_code == 1 and "invalid duration 'soon'" in result.output
    run("keys", "revoke", key["id"])
    result = run("keys", "rotate", key["id"])
    assert result.exit_code == 1 and "A revoked key cannot be rotated" in result.output


def test_a_revoked_key_cannot_be_updated_from_the_cli(cli_env: None) -> None:
    """Issue 18 item 11: `capgate keys update` on a revoked key wrote a misleading key.updated row."""
    run_json("orgs", "create", "acme")
    key = run_json("keys", "create", "--org", "acme", "--name", "agent")
    assert run("keys", "revoke", key["id"]).exit_code == 0
    result = run("keys", "update", key["id"], "--name", "renamed")
    assert result.exit_code != 0
    assert "A revoked key cannot be changed" in result.output
    assert "key.updated" not in run("audit", "--action", "key.updated").output
