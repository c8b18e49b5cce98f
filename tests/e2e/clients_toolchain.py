"""Where tests/e2e/clients/install.sh puts the real clients, and how a test asks for one.

`make test` skips a client whose toolchain is not installed; `.ci/run` installs them all and sets
CAPGATE_REQUIRE_CLIENTS=1, so there a missing one fails instead of skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.cli.client_configs import CLIENTS, ClientConfig

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CAPGATE_CLIENTS_CACHE", ROOT / ".cache"))
NODE_BIN = CACHE / "node24" / "node_modules" / ".bin"
NODE = NODE_BIN / "node"
NODE_CLIENTS_BIN = CACHE / "node-clients" / "node_modules" / ".bin"
MCP_REMOTE = CACHE / "node-clients" / "node_modules" / "mcp-remote" / "dist" / "proxy.js"
LANGCHAIN_PYTHON = CACHE / "langchain-venv" / "bin" / "python"
RUN_SNIPPET = ROOT / "tests" / "e2e" / "clients" / "run_snippet.py"


def require(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if not missing:
        return
    message = (
        "real client not installed: run `make clients` (Node 24 and the Node MCP clients into .cache/);"
        f" missing {', '.join(missing)}"
    )
    if os.environ.get("CAPGATE_REQUIRE_CLIENTS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def node_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment a Node client runs in: Node 24 first on PATH, a throwaway HOME for its state."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")}
    env.update(PATH=f"{NODE_CLIENTS_BIN}:{NODE_BIN}:{env.get('PATH', '')}", HOME=str(home), **extra)
    return env


def snippet(name: str, base_url: str) -> str:
    client: ClientConfig = next(c for c in CLIENTS if c.name == name)
    return client.render(base_url=base_url)
