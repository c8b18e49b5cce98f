"""`make mutants`: applies each deliberate break (mutants/breaks.py) to a copy of the source and runs
the tests named for it; every break must make at least one of them fail.

Usage: python -m mutants [substring of a break's name ...]. Exit status 1 when a break survived or no
longer applies (its source text changed: update the break).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mutants.breaks import BREAKS, Break

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("auth", "server", "tools", "tests", "examples", "pyproject.toml", "README.md", "docs", "client-configs")
RUN_LIMIT_SECONDS = 900  # a whole run of one break's tests; each test also has pytest-timeout's limit


def copy_source(target: Path) -> None:
    ignore = shutil.ignore_patterns("__pycache__", ".pytest_cache", "*.egg-info", "node_modules", ".venv")
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, target / name)


def apply(target: Path, rule: Break) -> bool:
    path = target / rule.path
    text = path.read_text()
    if text.count(rule.old) != 1:
        return False
    path.write_text(text.replace(rule.old, rule.new))
    return True


def run_tests(target: Path, rule: Break) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(target)}
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "--ignore=tests/e2e", *rule.tests]
    return subprocess.run(
        command, cwd=target, env=env, capture_output=True, text=True, timeout=RUN_LIMIT_SECONDS, check=False
    )


def check(rule: Break) -> str:
    with tempfile.TemporaryDirectory(prefix="capgate-mutant-") as temp:
        target = Path(temp)
        copy_source(target)
        if not apply(target, rule):
            return "STALE (source text not found exactly once)"
        try:
            outcome = run_tests(target, rule)
        except subprocess.TimeoutExpired:
            return f"caught (the tests did not finish within {RUN_LIMIT_SECONDS} s)"
        if outcome.returncode == 1:
            lines = outcome.stdout.splitlines()
            failed = [line for line in lines if line.startswith(("FAILED tests/", "ERROR tests/"))]
            return f"caught ({failed[0] if failed else 'tests failed'})"
        if outcome.returncode == 0:
            return "SURVIVED (every named test passed)"
        return f"ERROR (pytest exit {outcome.returncode}): {outcome.stdout[-500:]}{outcome.stderr[-500:]}"


def main(selection: list[str]) -> int:
    chosen = [rule for rule in BREAKS if not selection or any(part in rule.name for part in selection)]
    problems = 0
    for rule in chosen:
        started = time.monotonic()
        verdict = check(rule)
        problems += not verdict.startswith("caught")
        print(f"{rule.name}: {verdict} [{time.monotonic() - started:.0f} s]", flush=True)
    print(f"{len(chosen) - problems} of {len(chosen)} breaks caught")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
