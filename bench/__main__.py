"""Runs every benchmark in turn, or the ones named.

python -m bench                                  # all of them
python -m bench capabilities verification        # these two
python -m bench capabilities --seconds 2         # one, with its own options (see --help)
"""

from __future__ import annotations

import importlib
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
    "server_timing",
)


def main(args: list[str]) -> None:
    names = [arg for arg in args if not arg.startswith("-")] if not any(a.startswith("-") for a in args) else args[:1]
    options = args[len(names) :]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    for name in names or BENCHMARKS:
        print(f"== bench.{name}", flush=True)
        importlib.import_module(f"bench.{name}").main(options)


if __name__ == "__main__":
    main(sys.argv[1:])
