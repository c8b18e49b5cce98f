"""bench.goals: the goal table comes from whatever results exist, and rewriting it is idempotent."""

from __future__ import annotations

import json
from pathlib import Path

from bench import goals


def write(results: Path, name: str, document: dict[str, object]) -> None:
    (results / name).write_text(json.dumps(document))


def test_missing_results_show_as_not_measured_and_present_ones_are_judged(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "README.md").write_text("# Benchmark results\n\nintro\n")
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n## Performance\n\ntext\n\n## Development\n")
    write(results, "capabilities.json", {"ratio": 0.9, "measured_at": "2026-12-01T00:00:00Z"})
    write(results, "server_timing.json", {"ratio": 0.97})
    write(
        results,
        "streams.json",
        {"max_streams_open": 10_000, "p99_ms_at_max": 80.0, "meets_goal": True, "checkpoints": [{"rss_mb": 1.0}]},
    )

    rows = {row.file: row for row in goals.rows(results)}

    assert rows["capabilities.json"].met is True
    assert rows["server_timing.json"].met is False  # a 3 % cost
    assert rows["streams.json"].met is True
    assert rows["keys_scale.json"].measured == goals.NOT_MEASURED and rows["keys_scale.json"].met is None
    first = goals.write(results, readme)
    once = readme.read_text()
    assert goals.write(results, readme) == first
    assert readme.read_text() == once  # the block between the markers is replaced, not added again
    assert once.index("## Performance") < once.index(goals.START) < once.index("## Development")
    assert (results / "README.md").read_text().count(goals.START) == 1
