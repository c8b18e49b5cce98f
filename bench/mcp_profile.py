"""Profiles capgate under the MCP ``tools/call`` load of ``bench.mcp_calls`` with py-spy.

    .venv/bin/python -m bench.mcp_profile [--mode stateless|legacy] [--seconds 10] [--output profile.txt]

Writes py-spy's collapsed stacks (``--format raw``; feed to flamegraph tools, or read the
top frames with ``--top``) while the load runs. py-spy must be installed (``pip install py-spy``)
and allowed to attach (ptrace).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.mcp_calls import start_capgate
from bench.mcp_loadgen import drive

PY_SPY = str(Path(sys.executable).parent / "py-spy")


def top_frames(collapsed: Path, limit: int) -> list[tuple[str, float]]:
    """Inclusive share of samples per function (file:function), highest first."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        seen = set()
        for frame in stack.split(";"):
            name = frame.split(" (")[0] + " " + frame.split("(")[-1].split(":")[0].rsplit("/", 1)[-1]
            if name not in seen:
                seen.add(name)
                inclusive[name] += samples
    return [(name, count / total) for name, count in inclusive.most_common(limit)]


async def load(server_target, mode, seconds: float, connections: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    await drive(server_target, mode, seconds=1.0, connections=connections)
    return await drive(server_target, mode, seconds=seconds, connections=connections)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["stateless", "legacy"], default="stateless")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--output", type=Path, default=Path("mcp_profile.txt"))
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL (Python CPU work)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="capgate-mcp-profile-") as base:
        server = start_capgate(Path(base))
        try:
            spy = subprocess.Popen(
                [PY_SPY, "record", "--pid", str(server.process.pid), "--format", "raw", "--rate", "200"]
                + ["--duration", str(int(args.seconds + 1)), "--output", str(args.output), "--nonblocking"]
                + (["--gil"] if args.gil else []),
                stdout=subprocess.DEVNULL,
            )
            result = asyncio.run(load(server.target, args.mode, args.seconds, args.connections))
            spy.wait(timeout=60)
        finally:
            server.stop()
    print(f"{args.mode}: {result['rps']:.1f} req/s, p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms")
    for name, share in top_frames(args.output, args.top):
        print(f"{share * 100:6.1f}%  {name}")


if __name__ == "__main__":
    main()
