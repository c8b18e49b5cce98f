"""The CLI starts fast: each command imports only what it uses (timed in bench/cli_startup.py, not here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from server.cli.preflight import migration_heads
from server.migrate import MIGRATIONS_DIR

# pydantic itself is not here: Typer converts some option types through it.
HEAVY = {"sqlalchemy", "alembic", "mcp", "uvicorn", "starlette", "pydantic_settings", "asyncpg"}


def imported_top_level_modules(args: list[str], env_dir: Path) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "server.cli", *args],
        capture_output=True,
        text=True,
        env={"CAPGATE_DATA_DIR": str(env_dir), "PATH": "/usr/bin:/bin"},
        timeout=120,
    )
    return set(re.findall(r"^import time:\s+\d+ \|\s+\d+ \| {1,2}(\w+)$", result.stderr, re.M))


@pytest.mark.parametrize("args", [["--help"], ["keys", "--help"], ["config", "--list"]])
def test_help_and_config_list_import_no_database_or_server_stack(args: list[str], tmp_path: Path) -> None:
    assert not imported_top_level_modules(args, tmp_path) & HEAVY


def test_a_database_command_does_not_import_alembic_or_the_server(tmp_path: Path) -> None:
    env = {"CAPGATE_DATA_DIR": str(tmp_path), "CAPGATE_ARGON2_MEMORY_COST": "8", "PATH": "/usr/bin:/bin"}
    subprocess.run([sys.executable, "-m", "server.cli", "init"], env=env, check=True, capture_output=True, timeout=120)
    loaded = imported_top_level_modules(["keys", "list", "--org", "demo"], tmp_path)
    assert "auth" in loaded  # it did list the keys (through auth.store)
    assert not loaded & {"alembic", "mcp", "uvicorn"}


def test_the_migration_check_reads_the_same_heads_as_alembic() -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert migration_heads() == set(ScriptDirectory.from_config(config).get_heads())
