"""The same memory scenario on SQLite and PostgreSQL gives the same answers, byte for byte."""

import json
from pathlib import Path
from typing import Any

from tests.tools.conftest import memory_app
from tests.tools.test_memory_tools import result

WRITES = [
    ("/Projects/secret.md", "launch plan for the capital"),
    ("/projects/notes.md", "foo then later bar"),
    ("/projects/zeta.md", "foo_bar in one word"),
    ("/beta.md", "tie word"),
    ("/alpha.md", "tie word"),
    ("/ranked/long.md", "gateway " + "filler " * 40),
    ("/ranked/short.md", "gateway gateway filler"),
]
CALLS: list[tuple[str, dict[str, Any]]] = [
    ("memory_ls", {"path": "/projects"}),
    ("memory_ls", {"path": "/Projects"}),
    ("memory_ls", {"path": "/"}),
    ("memory_search", {"query": "foo_bar"}),
    ("memory_search", {"query": "bar foo"}),
    ("memory_search", {"query": "tie"}),
    ("memory_search", {"query": "gateway"}),
    ("memory_search", {"query": "PROJECTS"}),
    ("memory_search", {"query": "absent words"}),
]


def without_times(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if k != "updatedAt"}
    if isinstance(value, list):
        return [without_times(item) for item in value]
    return value


async def scenario(data_dir: Path, url: str) -> list[str]:
    async with memory_app(data_dir, url) as (client, keys):
        key = await keys.key(await keys.organization())
        for path, content in WRITES:
            await result(client, key, "memory_write", path=path, content=content)
        return [json.dumps(without_times(await result(client, key, tool, **args))) for tool, args in CALLS]


async def test_one_memory_scenario_answers_the_same_on_sqlite_and_postgresql(
    tmp_path: Path, sqlite_url: str, postgres_url: str
) -> None:
    on_sqlite = await scenario(tmp_path / "sqlite", sqlite_url)
    on_postgres = await scenario(tmp_path / "postgres", postgres_url)
    assert on_sqlite == on_postgres
    answers = [json.loads(answer) for answer in on_sqlite]
    lower, upper = answers[0]["entries"], answers[1]["entries"]
    assert [entry["path"] for entry in lower] == ["/projects/notes.md", "/projects/zeta.md"]
    assert [entry["path"] for entry in upper] == ["/Projects/secret.md"]
    assert {hit["path"] for hit in answers[3]["results"]} == {"/projects/notes.md", "/projects/zeta.md"}
    assert answers[3]["results"] == answers[4]["results"]  # words anywhere, in any order
    ties = answers[5]["results"]
    assert [hit["path"] for hit in ties] == ["/alpha.md", "/beta.md"] and ties[0]["score"] == ties[1]["score"]
    ranked = answers[6]["results"]
    assert [hit["path"] for hit in ranked] == ["/ranked/short.md", "/ranked/long.md"]
    assert ranked[0]["score"] > ranked[1]["score"] > 0
    assert all(round(hit["score"], 3) == hit["score"] for answer in answers[3:] for hit in answer.get("results", []))
    assert {hit["path"] for hit in answers[7]["results"]} == {
        "/Projects/secret.md",
        "/projects/notes.md",
        "/projects/zeta.md",
    }
    assert answers[8]["results"] == []
