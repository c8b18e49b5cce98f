"""A new user's first hour with the CLI: one-line errors, the same database from any folder, a clear port clash."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CAPGATE, capgate_env

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def run(
    args: list[str], *, env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, input=stdin, timeout=EVENTUALLY * 3)


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A checkout of its own: a .venv (sharing this one's packages) in `project/`, as `make serve` leaves it."""
    folder = tmp_path / "project"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / ".venv")], check=True)
    site_packages = Path(
        sysconfig.get_path("purelib", vars={"base": str(folder / ".venv"), "platbase": str(folder / ".venv")})
    )
    ours = sysconfig.get_path("purelib")
    (site_packages / "capgate_shared.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return folder


def project_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAPGATE_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({"CAPGATE_ARGON2_TIME_COST": "1", "CAPGATE_ARGON2_MEMORY_COST": "8"}, **extra)
    return env


def project_cli(project: Path) -> list[str]:
    return [str(project / ".venv" / "bin" / "python"), "-m", "server.cli"]


def test_every_command_finds_the_projects_database_from_any_folder(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    init = run([*project_cli(project), "init"], env=project_env(), cwd=project)
    assert init.returncode == 0, init.stderr
    assert (project / "var" / "capgate.db").exists()

    listed = run([*project_cli(project), "orgs", "list", "--json"], env=project_env(), cwd=elsewhere)
    assert listed.returncode == 0, listed.stderr
    assert '"demo"' in listed.stdout
    assert not (elsewhere / "var").exists()


def test_a_missing_database_is_one_line_naming_capgate_init(project: Path) -> None:
    result = run([*project_cli(project), "keys", "list", "--org", "demo"], env=project_env(), cwd=project)
    assert_one_line_failure(result, "no database at", "capgate init")
    assert not (project / "var" / "capgate.db").exists()


def test_an_unmigrated_database_is_one_line_naming_capgate_init(project: Path) -> None:
    (project / "var").mkdir()
    (project / "var" / "capgate.db").touch()
    result = run([*project_cli(project), "orgs", "list"], env=project_env(), cwd=project)
    assert_one_line_failure(result, "capgate init")


@pytest.mark.parametrize(
    ("url", "fragments"),
    [
        ("postgresql://postgres@127.0.0.1:1/test", ["cannot reach the database at 127.0.0.1:1/test"]),
        ("postgresql://postgres@127.0.0.1:5432/capgate_no_such_db", ['"capgate_no_such_db" does not exist']),
        ("mysql://root@127.0.0.1/test", ["CAPGATE_DATABASE_URL", "not a SQLite or PostgreSQL URL"]),
        ("not a url", ["CAPGATE_DATABASE_URL"]),
        ("sqlite:////proc/capgate/capgate.db", ["/proc/capgate"]),
    ],
)
def test_database_mistakes_are_one_line_and_debug_shows_the_traceback(
    tmp_path: Path, url: str, fragments: list[str]
) -> None:
    env = capgate_env(tmp_path / "var", CAPGATE_DATABASE_URL=url)
    assert_one_line_failure(run([*CAPGATE, "db", "upgrade"], env=env, cwd=tmp_path), *fragments)
    debug = run([*CAPGATE, "--debug", "db", "upgrade"], env=env, cwd=tmp_path)
    assert debug.returncode != 0 and "Traceback (most recent call last)" in debug.stderr


@pytest.mark.postgres
def test_plain_postgresql_and_sqlite_urls_work(tmp_path: Path, postgres_url: str) -> None:
    plain = postgres_url.replace("postgresql+asyncpg://", "postgresql://")
    for url in (plain, f"sqlite:///{tmp_path / 'plain.db'}"):
        env = capgate_env(tmp_path / "var", CAPGATE_DATABASE_URL=url)
        result = run([*CAPGATE, "db", "upgrade"], env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "up to date" in result.stdout


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


def test_a_port_in_use_is_one_line_before_anything_is_migrated(tmp_path: Path, busy_port: int) -> None:
    env = capgate_env(tmp_path / "var", CAPGATE_PORT=str(busy_port))
    result = run([*CAPGATE, "serve"], env=env, cwd=tmp_path)
    assert_one_line_failure(
        result, f"port {busy_port} is in use — stop the other server or run with --port/CAPGATE_PORT"
    )
    assert not (tmp_path / "var" / "capgate.db").exists()


@pytest.fixture
def small_mount(tmp_path: Path) -> Iterator[Path]:
    """A tiny tmpfs (root only): what a full or read-only data disk looks like."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("needs root to mount a small tmpfs (CI runs as root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_data_dir_is_one_line(tmp_path: Path, small_mount: Path) -> None:
    (small_mount / "filler").write_bytes(b"\0" * 60_000)
    env = capgate_env(small_mount / "var")
    assert_one_line_failure(run([*CAPGATE, "init"], env=env, cwd=tmp_path), "CAPGATE_DATA_DIR")


def test_a_read_only_data_dir_is_one_line(tmp_path: Path, small_mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    env = capgate_env(small_mount / "var")
    assert_one_line_failure(run([*CAPGATE, "init"], env=env, cwd=tmp_path), "read-only", "CAPGATE_DATA_DIR")


def test_a_password_prompt_without_a_terminal_names_password_stdin(tmp_path: Path) -> None:
    env = capgate_env(tmp_path / "var")
    assert run([*CAPGATE, "init"], env=env, cwd=tmp_path).returncode == 0
    result = run(
        [*CAPGATE, "users", "create", "--org", "demo", "--email", "a@b.example"], env=env, cwd=tmp_path, stdin=""
    )
    assert_one_line_failure(result, "no terminal", "--password-stdin")


def test_the_first_run_banner_names_a_cli_that_runs(tmp_path: Path) -> None:
    env = capgate_env(tmp_path / "var")
    env["PATH"] = "/usr/bin:/bin"  # as in a fresh shell: the venv is not activated
    banner = run([*CAPGATE, "init"], env=env, cwd=ROOT)
    assert banner.returncode == 0, banner.stderr
    hint = next(line for line in banner.stdout.splitlines() if line.startswith("The capgate CLI is"))
    cli = hint.removeprefix("The capgate CLI is ").split(" ")[0]
    assert run([cli, "--help"], env=env, cwd=ROOT).returncode == 0, hint
    assert "source " in hint and "/bin/activate" in hint


def test_config_says_where_each_snippet_goes_in_one_sentence(tmp_path: Path) -> None:
    env = capgate_env(tmp_path / "var")
    names = run([*CAPGATE, "config", "--list"], env=env, cwd=tmp_path).stdout.split()
    clients = [
        line.split()[0] for line in run([*CAPGATE, "config", "--list"], env=env, cwd=tmp_path).stdout.splitlines()
    ]
    assert names and clients
    for client in clients:
        header = run([*CAPGATE, "config", client], env=env, cwd=tmp_path).stderr.strip()
        assert header.endswith(("run it in a shell",)) or ": put it in " in header, header
        assert "put this in run" not in header


def test_an_old_python_is_refused_with_how_to_pick_another(tmp_path: Path) -> None:
    fake = tmp_path / "python3.10"
    fake.write_text(
        "#!/bin/sh\n"
        f'exec {sys.executable} -c "import sys; sys.version_info = (3, 10, 9, \'final\', 0); exec(sys.argv[1])" "$2"\n'
    )
    fake.chmod(0o755)
    result = subprocess.run(
        ["make", "-C", str(ROOT), f"VENV={tmp_path / 'venv'}", f"PYTHON={fake}", f"{tmp_path / 'venv'}/.installed"],
        capture_output=True,
        text=True,
        timeout=EVENTUALLY,
    )
    assert result.returncode != 0
    assert "capgate needs Python 3.11 or newer" in result.stderr
    assert "PYTHON=python3.12" in result.stderr
    assert not (tmp_path / "venv").exists()
