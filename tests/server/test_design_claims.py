"""Issue 14 (info): what docs/design.md says about `*` keys and /metrics is what the code does."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.helpers import KeyFactory

DESIGN = Path(__file__).parents[2] / "docs" / "design.md"


async def test_a_wildcard_key_stays_in_its_own_organization(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    mine, theirs = await keys.organization(), await keys.organization()
    wildcard = {"x-api-key": await keys.key(mine, scopes=["*"])}
    other = {"x-api-key": await keys.key(theirs)}
    session = (await client.post("/api/runtime/sessions", json={}, headers=other)).json()["id"]
    assert (await client.get(f"/api/runtime/sessions/{session}", headers=wildcard)).status_code == 404
    assert "everything, every organization" not in DESIGN.read_text()


async def test_metrics_needs_its_operator_scope_as_the_design_says(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    runtime = {"x-api-key": await keys.key(await keys.organization())}
    assert (await client.get("/metrics")).status_code == 401
    assert (await client.get("/metrics", headers=runtime)).status_code == 403
    assert "`metrics:read` | `GET /metrics`" in DESIGN.read_text()
