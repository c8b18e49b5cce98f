"""Credentials at rest: AES-256-GCM bound to the organization, a generated key file kept private, rotation."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from server.cli.main import app
from server.integrations.vault import DataKey, Vault, VaultError, load_vault
from tests.e2e.harness import capgate_env
from tests.integrations.upstreams import TOKENS, Upstream


def test_a_sealed_credential_opens_only_for_its_organization() -> None:
    vault = Vault([DataKey.generate()])
    key_id, sealed = vault.seal("org_a", "s3cret-token")
    assert b"s3cret-token" not in sealed
    assert vault.open("org_a", key_id, sealed) == "s3cret-token"
    with pytest.raises(VaultError, match="another organization"):
        vault.open("org_b", key_id, sealed)
    with pytest.raises(VaultError, match="unknown data key"):
        Vault([DataKey.generate()]).open("org_a", key_id, sealed)


def test_the_generated_key_file_is_private_and_reused(tmp_path: Path) -> None:
    first = load_vault(tmp_path, None)
    assert stat.S_IMODE(os.stat(tmp_path / "secret-keys").st_mode) == 0o600
    assert load_vault(tmp_path, None).current_key_id == first.current_key_id


def test_a_configured_key_needs_32_bytes_and_older_keys_still_open(tmp_path: Path) -> None:
    with pytest.raises(VaultError, match="32 bytes"):
        load_vault(tmp_path, base64.b64encode(b"short").decode())
    old, new = DataKey.generate(), DataKey.generate()
    key_id, sealed = Vault([old]).seal("org", "x")
    both = load_vault(tmp_path, f"{new.entry()},{old.entry()}")
    assert both.current_key_id == new.id and both.open("org", key_id, sealed) == "x"


def test_cli_connects_an_account_from_stdin_and_rotation_reseals_it(tmp_path: Path, http_upstream: Upstream) -> None:
    runner, env = CliRunner(), capgate_env(tmp_path)

    def run(*args: str, input: str | None = None) -> str:
        result = runner.invoke(app, list(args), env=env, input=input)
        assert result.exit_code == 0, result.output
        return result.output

    run("db", "upgrade")
    run("orgs", "create", "acme")
    run("integrations", "add", "crm", "--org", "acme", "--url", http_upstream.url)
    connected = json.loads(
        run(
            "accounts", "connect", "crm", "--org", "acme", "--label", "s", "--secret-stdin", "--json", input=TOKENS["b"]
        )
    )
    assert connected[0]["status"] == "ok" and connected[0]["tools"] >= 5
    before = load_vault(tmp_path, None).current_key_id
    assert "1 credentials re-sealed" in run("secrets", "rotate")
    assert load_vault(tmp_path, None).current_key_id != before
    tested = json.loads(run("accounts", "test", connected[0]["id"], "--org", "acme", "--json"))
    assert tested[0]["status"] == "ok"  # the re-sealed credential still opens and the upstream accepts it
    listing = run("accounts", "list", "--org", "acme") + run("integrations", "list", "--org", "acme")
    assert TOKENS["b"] not in listing
    run("tools", "disable", "crm_create_note", "--org", "acme")  # an organization switches integration tools too
    run("accounts", "disable", connected[0]["id"], "--org", "acme")
    assert json.loads(run("accounts", "list", "--org", "acme", "--json"))[0]["status"] == "disabled"
    run("accounts", "remove", connected[0]["id"], "--org", "acme")
    run("integrations", "remove", "crm", "--org", "acme")
    assert json.loads(run("integrations", "list", "--org", "acme", "--json")) == []


def test_stdio_integrations_need_a_command_and_the_env_var_for_the_credential(tmp_path: Path) -> None:
    runner, env = CliRunner(), capgate_env(tmp_path)
    assert runner.invoke(app, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(app, ["orgs", "create", "acme"], env=env).exit_code == 0
    no_env = runner.invoke(app, ["integrations", "add", "loc", "--org", "acme", "--command", "python -V"], env=env)
    assert no_env.exit_code == 1 and "credentialEnv" in no_env.output
    both = ["integrations", "add", "loc", "--org", "acme", "--command", "x", "--url", "http://127.0.0.1:9/mcp"]
    assert "exactly one of --url or --command" in runner.invoke(app, both, env=env).output
