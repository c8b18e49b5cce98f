"""Ready-to-paste configuration for real MCP clients: the one source of `capgate config` and client-configs/.

Every snippet takes the key from an environment variable or from the client's own secret prompt; none
holds a key. The snippets live in client_templates/; `python -m server.cli.client_configs [DIR]` rewrites
client-configs/ from them.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

DEFAULT_BASE_URL = "http://127.0.0.1:8765"
DEFAULT_KEY_ENV = "CAPGATE_API_KEY"
INSPECTOR_PACKAGE = "@modelcontextprotocol/inspector@2.12.0"
MCP_REMOTE_PACKAGE = "mcp-remote@0.15.1"
TEMPLATES = Path(__file__).with_name("client_templates")


@dataclass(frozen=True)
class ClientConfig:
    name: str
    title: str
    filename: str
    syntax: str  # json, toml, yaml, python or shell: what the parse test reads it as
    where: str

    @property
    def template(self) -> str:
        """The snippet with placeholders (@MCP_URL@, @KEY_ENV@, …), from client_templates/<filename>.tmpl."""
        return (TEMPLATES / f"{self.filename}.tmpl").read_text()

    def render(self, *, base_url: str = DEFAULT_BASE_URL, key_env: str = DEFAULT_KEY_ENV) -> str:
        base = base_url.rstrip("/")
        text = self.template.replace("@MCP_URL@", f"{base}/mcp").replace("@BASE_URL@", base)
        text = text.replace("@KEY_ENV@", key_env).replace("@INSPECTOR@", INSPECTOR_PACKAGE)
        return text.replace("@MCP_REMOTE@", MCP_REMOTE_PACKAGE).replace("@NAME@", self.name)

    @property
    def instruction(self) -> str:
        """What to do with the snippet, as one sentence: `run it in a shell`, `put it in .vscode/mcp.json`."""
        return self.where if self.syntax == "shell" else f"put it in {self.where}"


CLIENTS: tuple[ClientConfig, ...] = (
    ClientConfig("claude-code", "Claude Code", "claude-code.sh", "shell", "run it in a shell"),
    ClientConfig(
        "claude-code-project",
        "Claude Code (project)",
        "claude-code.mcp.json",
        "json",
        ".mcp.json in a project",
    ),
    ClientConfig(
        "claude-desktop",
        "Claude Desktop",
        "claude-desktop.json",
        "json",
        "claude_desktop_config.json",
    ),
    ClientConfig("cursor", "Cursor", "cursor.json", "json", "~/.cursor/mcp.json or .cursor/mcp.json"),
    ClientConfig("vscode", "VS Code", "vscode.json", "json", ".vscode/mcp.json"),
    ClientConfig("windsurf", "Windsurf", "windsurf.json", "json", "~/.codeium/windsurf/mcp_config.json"),
    ClientConfig("gemini-cli", "Gemini CLI", "gemini-cli.json", "json", "~/.gemini/settings.json"),
    ClientConfig("codex", "Codex CLI", "codex.toml", "toml", "~/.codex/config.toml"),
    ClientConfig("zed", "Zed", "zed.json", "json", "Zed settings.json"),
    ClientConfig("continue", "Continue", "continue.yaml", "yaml", ".continue/mcpServers/capgate.yaml"),
    ClientConfig("openai-agents", "OpenAI Agents SDK", "openai_agents.py", "python", "a Python script"),
    ClientConfig("langchain", "LangChain MCP adapters", "langchain_mcp.py", "python", "a Python script"),
    ClientConfig("fastmcp", "fastmcp client", "fastmcp_client.py", "python", "a Python script"),
    ClientConfig("mcp-inspector", "MCP Inspector (CLI)", "mcp-inspector.sh", "shell", "run it in a shell"),
    ClientConfig("curl", "curl", "curl.sh", "shell", "run it in a shell"),
)
BY_NAME = {client.name: client for client in CLIENTS}


def get_client(name: str) -> ClientConfig:
    """The client called `name`; KeyError naming the known ones otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown client {name!r}; known: {', '.join(BY_NAME)}") from None


def write_all(directory: Path) -> list[Path]:
    """Writes every snippet with the default URL and variable into directory (client-configs/)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for client in CLIENTS:
        path = directory / client.filename
        path.write_text(client.render())
        if client.syntax == "shell":
            path.chmod(0o755)
        written.append(path)
    return written


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "client-configs")
    for written_path in write_all(target):
        sys.stdout.write(f"wrote {written_path}\n")
