"""The README, run as a new user would: every shell block, verbatim, after the first `make serve`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deadlines import EVENTUALLY
from tests.e2e.harness import CAPGATE, capgate_env, running_capgate

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
SKIP_MARK = "<!-- readme-test: skip"
README_URL = "http://127.0.0.1:8765"


def readme_shell_blocks(text: str) -> list[str]:
    """The ```sh blocks in order, leaving out those announced by a `<!-- readme-test: skip (why) -->` line."""
    blocks: list[str] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        if lines[index].strip() == "```sh":
            end = lines.index("```", index + 1)
            skipped = index > 0 and lines[index - 1].startswith(SKIP_MARK)
            if not skipped:
                blocks.append("\n".join(lines[index + 1 : end]))
            index = end
        index += 1
    return blocks


def test_the_readme_has_runnable_blocks_and_skips_say_why() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(readme_shell_blocks(text)) >= 6
    for line in text.splitlines():
        if line.startswith(SKIP_MARK):
            assert re.match(r"<!-- readme-test: skip \(.+\) -->$", line), line


def test_every_readme_shell_block_runs_verbatim_after_make_serve(tmp_path: Path) -> None:
    data_dir = tmp_path / "var"
    env = capgate_env(data_dir)
    # What `make serve` runs first; its banner holds the exports the README tells the user to paste.
    banner = subprocess.run([*CAPGATE, "init"], env=env, capture_output=True, text=True, timeout=EVENTUALLY)
    assert banner.returncode == 0, banner.stderr
    exports = re.findall(r"^\s*(export CAPGATE_(?:API_KEY|OWNER)=.*?)\s*(?:#.*)?$", banner.stdout, re.M)
    assert len(exports) == 2, banner.stdout

    work = tmp_path / "checkout"
    work.mkdir()
    (work / ".venv").symlink_to(Path(sys.prefix))  # `source .venv/bin/activate`, as in the project folder
    blocks = readme_shell_blocks((ROOT / "README.md").read_text())
    with running_capgate(data_dir) as capgate:
        script = "\n".join(
            [
                "set -euo pipefail",
                # Any 4xx/5xx answer fails the run, with the body on stderr.
                'curl() { command curl --fail-with-body --silent --show-error "$@"; }',
                *exports,
                *(block.replace(README_URL, capgate.url) for block in blocks),
            ]
        )
        run_env = {k: v for k, v in capgate.env.items() if k != "VIRTUAL_ENV"}
        run_env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # no capgate on PATH until the README's activate line
        result = subprocess.run(
            ["bash", "-c", script], cwd=work, env=run_env, capture_output=True, text=True, timeout=4 * EVENTUALLY
        )
    assert result.returncode == 0, f"README block failed:\n{result.stderr[-3000:]}\n{result.stdout[-2000:]}"
    assert "key.rotated" in result.stdout  # the last block's audit query saw the rotation the blocks made
