"""The goal table of issue 12, from whatever bench/results/*.json hold now.

Reads the results the benchmarks wrote (a missing file or field shows as "not measured"), and
writes one table — goal, target, measured, met?, date, machine (CPU model, cores, load average
the run recorded) — between the markers in bench/results/README.md and in the top-level
README's Performance section. `python -m bench all` runs it last.

    .venv/bin/python -m bench.goals [--results bench/results] [--check]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.machine import cpu_model

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- goals:start (written by python -m bench.goals) -->", "<!-- goals:end -->"
NOT_MEASURED = "not measured"


@dataclass
class Row:
    goal: str
    target: str
    measured: str = NOT_MEASURED
    met: bool | None = None
    source: dict[str, Any] | None = None
    file: str = ""


def dig(document: Any, *path: str) -> Any:
    for step in path:
        if not isinstance(document, dict) or step not in document:
            return None
        document = document[step]
    return document


def ratio(value: Any) -> str:
    return f"{value:.2f}×" if isinstance(value, int | float) else "?"


def mcp_calls(doc: dict[str, Any]) -> tuple[str, bool | None]:
    parts, met = [], []
    for mode in ("stateless", "legacy"):
        sdk, fast = dig(doc, "modes", mode, "ratio_rps"), dig(doc, "modes", mode, "ratio_fastmcp_rps")
        if sdk is None:
            continue
        parts.append(f"{mode}: {ratio(sdk)} SDK, {ratio(fast) if fast is not None else 'FastMCP not measured'}")
        met += [sdk >= 0.90, fast is not None and fast >= 1.2]
    return "; ".join(parts) or NOT_MEASURED, (all(met) if met else None)


def capabilities(doc: dict[str, Any]) -> tuple[str, bool | None]:
    value = doc.get("ratio")
    return (f"{ratio(value)} Starlette", value >= 0.85) if isinstance(value, int | float) else (NOT_MEASURED, None)


def runtime_invoke(doc: dict[str, Any]) -> tuple[str, bool | None]:
    value = dig(doc, "memory_read_vs_capabilities", "rps_ratio")
    if value is None:
        value = doc.get("ratio")
    if not isinstance(value, int | float):
        return NOT_MEASURED, None
    return f"{ratio(value)} /capabilities", value >= 0.5


def keys_scale(doc: dict[str, Any]) -> tuple[str, bool | None]:
    parts, met = [], []
    for backend, result in (doc.get("backends") or {}).items():
        counts = result.get("by_key_count") or {}
        for kind in ("warm", "cold"):
            ratios = [dig(entry, kind, "ratio_to_first") for entry in counts.values()]
            ratios = [r for r in ratios if isinstance(r, int | float)]
            if ratios:
                parts.append(f"{backend} {kind} {min(ratios):.2f}–{max(ratios):.2f}")
                met.append(all(0.9 <= r <= 1.1 for r in ratios))
        if counts:
            parts[-1] += f" ({min(map(int, counts)):,}→{max(map(int, counts)):,} keys)"
    return "; ".join(parts) or NOT_MEASURED, (all(met) if met else None)


def streams(doc: dict[str, Any]) -> tuple[str, bool | None]:
    count = doc.get("max_streams_open")
    if count is None:
        return NOT_MEASURED, None
    points = doc.get("checkpoints", [])
    latency = (points[-1].get("latency") or {}) if points else {}
    progress, changed = dig(latency, "progress_events", "p99_ms"), dig(latency, "list_changed", "p99_ms")
    rss = " / ".join(f"{point.get('rss_mb', 0):.0f}" for point in points)
    text = f"{count:,} streams; p99 progress {progress} ms, list_changed {changed} ms; RSS {rss} MB"
    return text, bool(doc.get("meets_goal"))


def server_timing(doc: dict[str, Any]) -> tuple[str, bool | None]:
    """``ratio``: throughput with the header / without it (cost = 1 − ratio); or ``cost`` directly."""
    cost = doc.get("cost")
    if not isinstance(cost, int | float) and isinstance(doc.get("ratio"), int | float):
        cost = 1 - doc["ratio"]
    if not isinstance(cost, int | float):
        return NOT_MEASURED, None
    if "python_calls_per_request" in doc:
        calls = doc["python_calls_per_request"]
        return (
            f"cost {cost * 100:.1f} % of Python calls per request ({calls['timing_on']} vs {calls['timing_off']});"
            f" throughput ratio {doc.get('ratio')} (rounds {min(doc.get('ratio_per_round') or [0])}–"
            f"{max(doc.get('ratio_per_round') or [0])}: noise)",
            cost < 0.02,
        )
    return f"cost {cost * 100:.1f} % (ratio {1 - cost:.3f})", cost < 0.02


def verification(doc: dict[str, Any]) -> tuple[str, bool | None]:
    floods = doc.get("floods") or {}
    runs = {kind: dig(floods, kind, "argon2_runs") for kind in ("random_strings", "bad_checksums", "unknown_ids")}
    if all(value is None for value in runs.values()):
        return NOT_MEASURED, None
    text = "argon2 " + ", ".join(f"{kind.replace('_', ' ')} {value}" for kind, value in runs.items())
    met = all(value == 0 for value in runs.values())
    per_flood = dig(doc, "goal_7", "valid_ratio_under_flood")
    if isinstance(per_flood, dict) and per_flood:
        worst = min(per_flood.values())
        offered = dig(doc, "goal_7", "flood_rps_offered")
        spread = f"{ratio(worst)}–{ratio(max(per_flood.values()))}"
        text += f"; valid keys under a {offered:g}/s flood {spread}"
        return text, met and worst >= 0.9
    under = next((v for k, v in floods.items() if "under_flood" in k), None) or doc.get("valid_under_flood")
    under_ratio = under.get("ratio") if isinstance(under, dict) else None
    if isinstance(under_ratio, int | float):
        text += f"; valid keys under flood {ratio(under_ratio)}"
        return text, met and under_ratio >= 0.9
    return text + "; valid keys under flood not measured", (False if not met else None)


GOALS: list[tuple[str, str, str, Callable[[dict[str, Any]], tuple[str, bool | None]]]] = [
    ("1. MCP tools/call", "≥ 0.90× bare SDK (both modes), ≥ 1.2× FastMCP", "mcp_calls.json", mcp_calls),
    ("2. warm GET /capabilities", "≥ 0.85× bare Starlette", "capabilities.json", capabilities),
    ("3. REST invoke, cheap tool", "≥ 0.5× warm /capabilities", "runtime_invoke.json", runtime_invoke),
    ("4. 1k → 1M stored keys", "throughput flat ±10 %", "keys_scale.json", keys_scale),
    ("5. open event streams", "10,000 in one process, p99 ≤ 100 ms", "streams.json", streams),
    ("6. Server-Timing header", "costs < 2 %", "server_timing.json", server_timing),
    (
        "7. invalid-key floods",
        "0 argon2 (malformed, bad checksum, unknown id); valid ≥ 0.9× under flood",
        "verification.json",
        verification,
    ),
]


def rows(results: Path) -> list[Row]:
    table = []
    for goal, target, file, read in GOALS:
        row = Row(goal, target, file=file)
        path = results / file
        if path.exists():
            document = json.loads(path.read_text())
            row.measured, row.met = read(document)
            row.source = document
        table.append(row)
    return table


def when_and_where(document: dict[str, Any] | None) -> tuple[str, str]:
    if document is None:
        return "", ""
    date = str(document.get("date") or document.get("measured_at") or "")[:10]
    found = document.get("machine") or {}
    load = found.get("load_average") or found.get("load_average_before_after") or dig(document, "load_average", "after")
    if isinstance(load, list | tuple) and load:
        load = load[0] if len(load) == 3 and "load_average" in found else load[-1]
    model = found.get("cpu_model", "")
    where = f"{model or '?'}, {found.get('cpus', '?')} cores, load {load if load is not None else '?'}"
    return date, where


def render(table: Sequence[Row]) -> str:
    lines = [
        START,
        "| goal | target | measured | met? | date | machine (CPU, cores, load average) |",
        "|---|---|---|---|---|---|",
    ]
    for row in table:
        met = {True: "**yes**", False: "no", None: "—"}[row.met]
        date, where = when_and_where(row.source)
        measured = f"{row.measured} ([{row.file}](bench/results/{row.file}))" if row.source else row.measured
        lines.append(f"| {row.goal} | {row.target} | {measured} | {met} | {date} | {where} |")
    lines.append("")
    lines.append(f"Written by `python -m bench.goals` ({cpu_model()}); each row's figures come from one run.")
    lines.append(END)
    return "\n".join(lines)


def replace_between(text: str, block: str, fallback_after: str) -> str:
    if START in text and END in text:
        head, rest = text.split(START, 1)
        return head + block + rest.split(END, 1)[1]
    if fallback_after in text:
        head, rest = text.split(fallback_after, 1)
        return head + fallback_after + "\n\n" + block + "\n" + rest
    return text.rstrip("\n") + "\n\n" + block + "\n"


def write(results: Path, readme: Path) -> str:
    block = render(rows(results))
    bench_readme = results / "README.md"
    local = block.replace("](bench/results/", "](")
    bench_readme.write_text(replace_between(bench_readme.read_text(), local, "# Benchmark results"))
    readme.write_text(replace_between(readme.read_text(), block, "## Performance"))
    return block


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args(argv)
    print(write(args.results, args.readme))


if __name__ == "__main__":
    main()
