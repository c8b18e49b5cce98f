"""What a tool's misbehaviour turns into: a failed execution with a clear message, never a 500 or a leak."""

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import insert

from tests.runtime_helpers import app_client, headers, invoke
from tools.context import ToolContext
from tools.memory.models import MemoryDocument
from tools.registry import Tool


class Empty(BaseModel):
    pass


async def returns_nan(_ctx: ToolContext, _args: Empty) -> dict[str, Any]:
    return {"ratio": math.nan}


async def returns_infinity(_ctx: ToolContext, _args: Empty) -> list[float]:
    return [1.0, math.inf]


async def reports_nan_progress(ctx: ToolContext, _args: Empty) -> str:
    await ctx.progress(math.nan, math.inf)
    return "unreachable"


async def runs_bad_sql(ctx: ToolContext, _args: Empty) -> str:
    row = {"organization_id": ctx.organization_id, "path": "/param-value.md", "content": "x", "size": 1}
    documents = MemoryDocument.__table__  # type: ignore[attr-defined]
    async with ctx.db.transaction() as db:
        await db.execute(insert(documents).values(**row))
        await db.execute(insert(documents).values(**row))  # the unique (organization, path) index refuses it
    return "unreachable"


TOOLS = [
    Tool("returns_nan", "NaN in its result", Empty, returns_nan),
    Tool("returns_infinity", "Infinity in its result", Empty, returns_infinity),
    Tool("reports_nan_progress", "NaN progress", Empty, reports_nan_progress),
    Tool("runs_bad_sql", "a failing query", Empty, runs_bad_sql),
]


def strict_json(raw: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(raw, parse_constant=refuse)


@pytest.mark.parametrize("tool", ["returns_nan", "returns_infinity", "reports_nan_progress"])
async def test_non_finite_numbers_fail_the_tool_with_a_clear_error(
    tmp_path: Path, database_url: str, tool: str
) -> None:
    async with app_client(tmp_path, database_url, TOOLS) as (client, keys, _state):
        key = await keys.key(await keys.organization())
        response = await invoke(client, key, tool)
        assert response.status_code == 200, response.text
        body = strict_json(response.text)
        assert body["status"] == "failed" and body["isError"] is True
        assert "NaN" in body["error"] or "Infinity" in body["error"], body["error"]
        execution = await client.get(f"/api/runtime/executions/{body['executionId']}", headers=headers(key))
        assert strict_json(execution.text)["status"] == "failed"
        events = await client.get(f"/api/runtime/executions/{body['executionId']}/events", headers=headers(key))
        data = [line[len("data: ") :] for line in events.text.splitlines() if line.startswith("data: ")]
        assert [strict_json(item)["type"] for item in data] == ["started", "failed"]


async def test_database_errors_reach_the_caller_as_a_reference_only(
    tmp_path: Path, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with app_client(tmp_path, database_url, TOOLS) as (client, keys, _state):
        key = await keys.key(await keys.organization())
        with caplog.at_level(logging.ERROR):
            body = (await invoke(client, key, "runs_bad_sql")).json()
    assert body["isError"] is True
    assert (
        "memory_documents" not in body["error"] and "param-value" not in body["error"] and "INSERT" not in body["error"]
    )
    reference = body["error"].rsplit("reference ", 1)[1].rstrip(")")
    logged = [record for record in caplog.records if reference in record.getMessage()]
    assert logged and "memory_documents" in (logged[0].exc_text or "")
