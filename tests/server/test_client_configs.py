"""client-configs/: every snippet parses, names capgate's URL and a variable or prompt, and never holds a key."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from server.cli.client_configs import CLIENTS, ClientConfig, get_client
from server.cli.main import app

FOLDER = Path(__file__).resolve().parents[2] / "client-configs"
BASE_URL = "https://capgate.example.test/team-a"
KEY_ENV = "ACME_CAPGATE_KEY"
KEY_LIKE = re.compile(r"cg_(live|test)_[0-9A-Za-z]{8,}")
# What may follow "Bearer " or an x-api-key header name: a variable, a prompt or a format slot, never a value.
CREDENTIAL = re.compile(r"""(Bearer +|(?i:x-api-key)["']?\s*[:,]\s*["']?)(?P<value>\S{0,24})""")
REFERENCE = re.compile(r"""^(\$\{|\$[A-Za-z_]|\{os\.environ\[|os\.environ\[|%s)""")


def parse(client: ClientConfig, text: str) -> Any:
    if client.syntax == "json":
        return json.loads(text)
    if client.syntax == "toml":
        return tomllib.loads(text)
    if client.syntax == "yaml":
        return yaml.safe_load(text)
    if client.syntax == "python":
        return ast.parse(text)
    if client.syntax == "shell":
        checked = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True, check=False)
        assert checked.returncode == 0, checked.stderr
        return text
    raise AssertionError(f"no parser for {client.syntax}")


def test_the_folder_holds_exactly_the_generated_snippets() -> None:
    stale = [c.filename for c in CLIENTS if (FOLDER / c.filename).read_text() != c.render()]
    assert not stale, f"regenerate with `python -m server.cli.client_configs`: {stale}"
    present = sorted(p.name for p in FOLDER.iterdir() if p.name != "__pycache__")
    assert present == sorted([c.filename for c in CLIENTS] + ["README.md"])


def test_the_folder_has_every_client_the_issue_names() -> None:
    titles = {c.title for c in CLIENTS}
    for expected in ["Claude Code", "Claude Desktop", "Cursor", "VS Code", "Windsurf", "Gemini CLI", "Codex CLI"]:
        assert expected in titles
    for expected in ["Zed", "Continue", "OpenAI Agents SDK", "LangChain MCP adapters", "fastmcp client", "curl"]:
        assert expected in titles
    assert "MCP Inspector (CLI)" in titles


@pytest.mark.parametrize("client", CLIENTS, ids=lambda c: c.name)
def test_snippet_parses_names_the_url_and_a_variable_or_prompt_and_no_key(client: ClientConfig) -> None:
    text = client.render(base_url=BASE_URL, key_env=KEY_ENV)
    parse(client, text)
    assert f"{BASE_URL}/mcp" in text or (client.name == "curl" and BASE_URL in text)
    assert KEY_ENV in text or "${input:" in text, "the key must come from a variable or the client's prompt"
    assert not KEY_LIKE.search(text)
    credentials = list(CREDENTIAL.finditer(text))
    assert credentials or f'bearer_token_env_var = "{KEY_ENV}"' in text, "the snippet must send the key"
    for found in credentials:
        assert REFERENCE.match(found["value"]), f"literal credential after {found[1]!r}: {found['value']!r}"


def test_vscode_asks_for_the_key_with_a_password_prompt() -> None:
    config = json.loads(get_client("vscode").render(base_url=BASE_URL))
    (prompt,) = config["inputs"]
    assert prompt["password"] is True
    server = config["servers"]["capgate"]
    assert server == {
        "type": "http",
        "url": f"{BASE_URL}/mcp",
        "headers": {"Authorization": f"Bearer ${{input:{prompt['id']}}}"},
    }


def test_codex_reads_the_bearer_token_from_the_named_variable() -> None:
    config = tomllib.loads(get_client("codex").render(base_url=BASE_URL, key_env=KEY_ENV))
    assert config["mcp_servers"]["capgate"] == {"url": f"{BASE_URL}/mcp", "bearer_token_env_var": KEY_ENV}


@pytest.mark.parametrize("client", [c for c in CLIENTS if c.syntax == "python"], ids=lambda c: c.name)
def test_python_snippets_read_the_key_from_os_environ(client: ClientConfig) -> None:
    tree = ast.parse(client.render(base_url=BASE_URL, key_env=KEY_ENV))
    constants = {node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)}
    assert f"{BASE_URL}/mcp" in constants
    lookups = [
        node for node in ast.walk(tree) if isinstance(node, ast.Subscript) and ast.unparse(node.value) == "os.environ"
    ]
    assert [ast.literal_eval(node.slice) for node in lookups] == [KEY_ENV]


def test_readme_describes_every_client() -> None:
    readme = (FOLDER / "README.md").read_text()
    for client in CLIENTS:
        assert f"`{client.filename}`" in readme, client.filename


runner = CliRunner()


def test_capgate_config_prints_the_snippet_for_the_given_url_and_variable() -> None:
    result = runner.invoke(app, ["config", "cursor", "--url", f"{BASE_URL}/mcp/", "--key-env", KEY_ENV])
    assert result.exit_code == 0, result.output
    assert result.stdout == get_client("cursor").render(base_url=BASE_URL, key_env=KEY_ENV)


def test_capgate_config_defaults_to_the_configured_public_base_url() -> None:
    env = {"CAPGATE_PUBLIC_BASE_URL": "https://gate.example.test/"}
    result = runner.invoke(app, ["config", "codex"], env=env)
    assert result.exit_code == 0, result.output
    assert 'url = "https://gate.example.test/mcp"' in result.stdout
    assert 'bearer_token_env_var = "CAPGATE_API_KEY"' in result.stdout


def test_capgate_config_list_names_every_client() -> None:
    result = runner.invoke(app, ["config", "--list"])
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == [c.name for c in CLIENTS]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config", "notepad"], "unknown client 'notepad'"),
        (["config"], "use --list"),
        (["config", "cursor", "--url", "capgate.example.test"], "is not an http(s) URL"),
        (["config", "cursor", "--key-env", "MY KEY"], "is not an environment variable name"),
    ],
)
def test_capgate_config_rejects_bad_input_with_a_clear_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
