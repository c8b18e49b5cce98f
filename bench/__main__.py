"""Runs every benchmark in turn, or the ones named; then writes the goal table (bench.goals).

python -m bench                                  # all of them (also: python -m bench all)
python -m bench capabilities verification        # these two
python -m bench capabilities --seconds 2         # one, with its own options (see --help)
"""

from __future__ import annotations

import importlib
import importlib.util
import sys

BENCHMARKS = (
    "capabilities",
    "verification",
    "ratelimit",
    "runtime_invoke",
    "mcp_calls",
    "integrations",
    "admin_console",
    "cli_startup",
    "replicas",
    "keys_scale",
    "server_timing",
    "streams",
    "goals",  # last: the goal table from the results the others wrote
)


def main(args: list[str]) -> None:
    names = [arg for arg in args if not arg.startswith("-")] if not any(a.startswith("-") for a in args) else args[:1]
    options = args[len(names) :]
    if names == ["all"]:
        names = []
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names or BENCHMARKS:
        if importlib.util.find_spec(f"bench.{name}") is None:
            print(f"== bench.{name}: not in this checkout, skipped", flush=True)
            continue
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main(options)


if __name__ == "__main__":
    main(sys.argv[1:])
