"""One timestamp format on the wire: RFC 3339 in UTC ending in Z, for keys, audit and the Runtime API alike."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.helpers import KeyFactory
from tests.runtime_helpers import headers, invoke

RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def timestamps(document: Any, names: tuple[str, ...]) -> list[str]:
    found: list[str] = []
    if isinstance(document, dict):
        for name, value in document.items():
            if name in names and value is not None:
                found.append(value)
            found += timestamps(value, names)
    elif isinstance(document, list):
        for item in document:
            found += timestamps(item, names)
    return found


async def test_keys_audit_and_runtime_answer_timestamps_ending_in_z(
    client: httpx.AsyncClient, keys: KeyFactory
) -> None:
    organization = await keys.organization()
    manager = await keys.key(organization, scopes=["keys:manage", "runtime"])
    expires = (datetime.now(UTC) + timedelta(days=3)).isoformat()
    created = await client.post("/api/keys", headers=headers(manager), json={"name": "agent", "expiresAt": expires})
    assert created.status_code == 201, created.text
    await client.delete(f"/api/keys/{created.json()['id']}", headers=headers(manager))
    body = (await invoke(client, manager, "example_echo", {"text": "hi"})).json()
    session = await client.get(f"/api/runtime/sessions/{body['sessionId']}", headers=headers(manager))
    execution = await client.get(f"/api/runtime/executions/{body['executionId']}", headers=headers(manager))
    answers = [
        (await client.get("/api/keys", headers=headers(manager))).json(),
        (await client.get("/api/audit", headers=headers(manager))).json(),
        session.json(),
        execution.json(),
    ]
    names = ("createdAt", "expiresAt", "revokedAt", "lastUsedAt", "updatedAt", "startedAt", "finishedAt")
    found = timestamps(answers, names)
    assert len(found) >= 8, answers
    assert [value for value in found if not RFC3339_Z.match(value)] == []
