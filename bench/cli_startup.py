"""How long `capgate` takes to start: --help, a database command and a config snippet (median wall time).

python -m bench cli_startup [--runs 15]
The issue's goal is < 0.5 s each. Wall time of a fresh process is at the mercy of the machine's load, so the
load average is recorded next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "cli_startup.json"
COMMANDS = {"--help": ["--help"], "keys list": ["keys", "list", "--org", "demo"], "config": ["config", "claude-code"]}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench cli_startup")
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args(argv)
    capgate = str(Path(sys.executable).with_name("capgate"))
    with tempfile.TemporaryDirectory() as data_dir:
        env = {**os.environ, "CAPGATE_DATA_DIR": data_dir, "CAPGATE_ARGON2_MEMORY_COST": "8"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's installed venv has its bytecode cached
        subprocess.run([capgate, "init"], env=env, check=True, capture_output=True)
        medians = {}
        for name, args in COMMANDS.items():
            times = []
            for _ in range(options.runs):
                started = time.perf_counter()
                subprocess.run([capgate, *args], env=env, check=True, capture_output=True)
                times.append(time.perf_counter() - started)
            medians[name] = round(statistics.median(times), 3)
            print(f"capgate {name}: median {medians[name]:.3f} s over {options.runs} runs", flush=True)
    result = {"median_seconds": medians, "goal_seconds": 0.5, "load_average": os.getloadavg(), "runs": options.runs}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
