"""Issue 14 item 7: what a keys:manage key may do to limits, how fast, and how many keys; on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from auth import store
from auth.dbtypes import utcnow
from auth.lifecycle import KeyChanges, update_api_key
from auth.models import ApiKey
from tests.conftest import migrate
from tests.helpers import FakeClock, KeyFactory, factory_for, key_id_of, make_settings, running_app

MANAGER = ["runtime", "keys:manage"]


async def operator_sets_limit(keys: KeyFactory, key: str, per_second: int) -> None:
    """What `capgate keys update --rate-limit-per-second` does."""
    async with keys.sessions.begin() as session:
        record = await store.get_api_key(session, key_id=key_id_of(key))
        changes = KeyChanges(rate_limit_per_second=per_second)
        await update_api_key(session, record=record, changes=changes, actor="cli", now=utcnow(), source="cli")


async def stored_limit(keys: KeyFactory, key: str) -> Any:
    async with keys.sessions() as session:
        return await session.scalar(select(ApiKey.rate_limit_per_second).where(ApiKey.id == key_id_of(key)))


async def test_a_manager_key_may_lower_but_not_raise_limits(
    clocked_client: tuple[httpx.AsyncClient, KeyFactory, FakeClock],
) -> None:
    client, keys, clock = clocked_client
    organization = await keys.organization()
    own = await keys.key(organization, scopes=MANAGER)
    managed = await keys.key(organization)
    for key in (own, managed):
        await operator_sets_limit(keys, key, 5)
    headers = {"x-api-key": own}
    for key in (own, managed):
        for body in ({"rateLimitPerSecond": 50}, {"rateLimitPerSecond": None}, {"rateLimitPerSecond": 6}):
            clock.advance(1)  # key routes count in the own key's limit of 5 per second
            raised = await client.patch(f"/api/keys/{key_id_of(key)}", headers=headers, json=body)
            assert raised.status_code == 403, raised.text
            assert raised.json()["code"] == "insufficient_scope"
        assert await stored_limit(keys, key) == 5
        clock.advance(1)
        lowered = await client.patch(f"/api/keys/{key_id_of(key)}", headers=headers, json={"rateLimitPerSecond": 3})
        assert lowered.status_code == 200 and await stored_limit(keys, key) == 3


async def test_key_routes_count_in_the_keys_rate_limit(
    clocked_client: tuple[httpx.AsyncClient, KeyFactory, FakeClock],
) -> None:
    client, keys, _clock = clocked_client  # the clock does not move
    manager = await keys.key(await keys.organization(), scopes=MANAGER)
    await operator_sets_limit(keys, manager, 3)
    statuses = [
        (await client.post("/api/keys", headers={"x-api-key": manager}, json={"name": f"k{index}"})).status_code
        for index in range(5)
    ]
    assert statuses == [201, 201, 201, 429, 429]  # the clock does not move: one second's worth


async def test_an_organization_cannot_hold_more_active_keys_than_the_cap(tmp_path: Path, database_url: str) -> None:
    await migrate(database_url)
    settings = make_settings(tmp_path, database_url, max_active_keys_per_organization=3)
    async with running_app(settings) as (app, client):
        keys = factory_for(app)
        headers = {"x-api-key": await keys.key(await keys.organization(), scopes=MANAGER)}
        created = [await client.post("/api/keys", headers=headers, json={"name": f"k{i}"}) for i in range(3)]
        assert [response.status_code for response in created] == [201, 201, 409]
        assert created[2].json()["code"] == "too_many_keys"
        assert (await client.delete(f"/api/keys/{created[0].json()['id']}", headers=headers)).status_code == 200
        assert (await client.post("/api/keys", headers=headers, json={"name": "again"})).status_code == 201


async def test_revoking_a_wildcard_key_needs_a_wildcard_key(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    organization = await keys.organization()
    operator = await keys.key(organization, scopes=["*"])
    manager = {"x-api-key": await keys.key(organization, scopes=MANAGER)}
    refused = await client.delete(f"/api/keys/{key_id_of(operator)}", headers=manager)
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert (await client.get("/capabilities", headers={"x-api-key": operator})).status_code == 200
    other_operator = {"x-api-key": await keys.key(organization, scopes=["*"])}
    assert (await client.delete(f"/api/keys/{key_id_of(operator)}", headers=other_operator)).status_code == 200
