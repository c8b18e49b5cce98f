"""Key lifecycle rules found by reading the code (issue 18 items 9-11, 22), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta

import anyio
import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from auth import lifecycle
from auth.audit import list_audit_events
from auth.dbtypes import utcnow
from auth.grants import NotGrantable, Rights, check_grant
from auth.models import ApiKey
from tests.helpers import FakeClock, KeyFactory, key_id_of

MANAGER = ["runtime", "keys:manage"]
Client = tuple[httpx.AsyncClient, KeyFactory]
ClockedClient = tuple[httpx.AsyncClient, KeyFactory, FakeClock]


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["code"] == code, response.text


async def stored(keys: KeyFactory, key_id: str) -> ApiKey:
    async with keys.sessions() as session:
        row = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
        assert row is not None
        return row


# Item 9: a key replaced by rotation keeps working for runtime use in its overlap, but manages nothing.


async def test_a_rotated_away_manager_cannot_manage_keys_in_its_overlap(db_client: Client) -> None:
    client, keys = db_client
    organization = await keys.organization()
    old = {"x-api-key": await keys.key(organization, scopes=MANAGER, name="ops")}
    other = key_id_of(await keys.key(organization, name="agent"))
    rotated = await client.post(f"/api/keys/{key_id_of(old['x-api-key'])}/rotate", headers=old)
    assert rotated.status_code == 201
    successor = rotated.json()["id"]
    assert (await client.get("/capabilities", headers=old)).status_code == 200  # runtime use goes on
    assert (await client.get("/api/keys", headers=old)).status_code == 200  # and so does reading
    refused = [
        await client.post("/api/keys", headers=old, json={"name": "minted"}),
        await client.post(f"/api/keys/{key_id_of(old['x-api-key'])}/rotate", headers=old),
        await client.post(f"/api/keys/{successor}/rotate", headers=old),
        await client.post(f"/api/keys/{other}/rotate", headers=old),
        await client.patch(f"/api/keys/{other}", headers=old, json={"name": "renamed"}),
        await client.delete(f"/api/keys/{successor}", headers=old),
    ]
    for response in refused:
        assert_error(response, 403, "key_replaced")
    new = {"x-api-key": rotated.json()["key"]}
    assert (await client.post("/api/keys", headers=new, json={"name": "minted"})).status_code == 201
    # The old key may still retire itself early.
    assert (await client.delete(f"/api/keys/{key_id_of(old['x-api-key'])}", headers=old)).status_code == 200


async def manager_and_rotated_agent(client: httpx.AsyncClient, keys: KeyFactory) -> tuple[dict[str, str], str]:
    """A manager's headers and the id of a key named "agent" it has just rotated."""
    organization = await keys.organization()
    manager = {"x-api-key": await keys.key(organization, scopes=MANAGER)}
    agent = key_id_of(await keys.key(organization, name="agent"))
    assert (await client.post(f"/api/keys/{agent}/rotate", headers=manager)).status_code == 201
    return manager, agent


async def test_a_replaced_key_cannot_be_rotated_again(db_client: Client) -> None:
    client, keys = db_client
    manager, agent = await manager_and_rotated_agent(client, keys)
    again = await client.post(f"/api/keys/{agent}/rotate", headers=manager)
    assert_error(again, 409, "key_replaced")


async def test_rotation_never_extends_a_keys_life(clocked_client: ClockedClient) -> None:
    client, keys, clock = clocked_client
    organization = await keys.organization()
    manager = {"x-api-key": await keys.key(organization, scopes=MANAGER)}
    ends = utcnow() + timedelta(days=30)
    limited = key_id_of(await keys.key(organization, name="limited", expires_at=ends))
    forever = key_id_of(await keys.key(organization, name="forever"))
    clock.advance(10 * 86_400)
    first = await client.post(f"/api/keys/{limited}/rotate", headers=manager, json={"overlapSeconds": 60})
    assert first.status_code == 201, first.text
    assert abs(datetime.fromisoformat(first.json()["expiresAt"]) - ends) < timedelta(seconds=1)
    second = await client.post(f"/api/keys/{first.json()['id']}/rotate", headers=manager)
    assert abs(datetime.fromisoformat(second.json()["expiresAt"]) - ends) < timedelta(seconds=1)
    unlimited = await client.post(f"/api/keys/{forever}/rotate", headers=manager)
    assert unlimited.json()["expiresAt"] is None
    assert (await client.post(f"/api/keys/{unlimited.json()['id']}/rotate", headers=manager)).json()[
        "expiresAt"
    ] is None


# Item 10: one active key per name, enforced by the database.


async def test_concurrent_creates_with_one_name_make_one_key(
    db_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = db_client
    organization = await keys.organization()
    manager = {"x-api-key": await keys.key(organization, scopes=MANAGER)}
    all_checked = threading.Barrier(6, timeout=10)
    real_hash = keys.hasher.hash

    def hash_after_every_check(secret: str) -> str:
        all_checked.wait()  # every request has passed the name check before any inserts
        return real_hash(secret)

    monkeypatch.setattr(keys.hasher, "hash", hash_after_every_check)
    with anyio.fail_after(30):
        answers = await asyncio.gather(
            *(client.post("/api/keys", headers=manager, json={"name": "dup"}) for _ in range(6))
        )
    assert sorted(response.status_code for response in answers) == [201, 409, 409, 409, 409, 409]
    for response in answers:
        if response.status_code == 409:
            assert_error(response, 409, "duplicate_name")
    listed = (await client.get("/api/keys", headers=manager)).json()["keys"]
    assert [key["name"] for key in listed].count("dup") == 1


async def test_concurrent_renames_to_one_name_leave_one_key_with_it(
    db_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, keys = db_client
    organization = await keys.organization()
    manager = {"x-api-key": await keys.key(organization, scopes=MANAGER)}
    first, second = [key_id_of(await keys.key(organization, name=name)) for name in ("a", "b")]
    arrived, both = 0, asyncio.Event()
    real_now = getattr(lifecycle, "database_now", None)

    async def after_both_checked(session: AsyncSession) -> datetime:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            both.set()
        await both.wait()
        assert real_now is not None
        return await real_now(session)

    # Stamping updated_at comes after the name check: both requests pass the check, then both write.
    monkeypatch.setattr(lifecycle, "database_now", after_both_checked, raising=False)
    with anyio.fail_after(30):
        answers = await asyncio.gather(
            *(client.patch(f"/api/keys/{key}", headers=manager, json={"name": "same"}) for key in (first, second))
        )
    assert sorted(response.status_code for response in answers) == [200, 409]
    names = sorted([(await stored(keys, first)).name, (await stored(keys, second)).name])
    assert names in (["a", "same"], ["b", "same"])


async def test_the_rotation_pair_shares_its_name_but_nobody_else_may(db_client: Client) -> None:
    client, keys = db_client
    manager, _agent = await manager_and_rotated_agent(client, keys)
    assert_error(await client.post("/api/keys", headers=manager, json={"name": "agent"}), 409, "duplicate_name")


# Item 11: revoked and expired keys are history, not editable.


async def test_revoked_and_expired_keys_cannot_be_edited(clocked_client: ClockedClient) -> None:
    client, keys, clock = clocked_client
    organization = await keys.organization()
    manager = {"x-api-key": await keys.key(organization, scopes=MANAGER)}
    revoked = await keys.key(organization, name="gone")
    await keys.revoke(revoked)
    expired = key_id_of(await keys.key(organization, name="old", expires_at=utcnow() + timedelta(hours=1)))
    clock.advance(2 * 3600)
    for key_id, code in ((key_id_of(revoked), "key_revoked"), (expired, "key_expired")):
        response = await client.patch(f"/api/keys/{key_id}", headers=manager, json={"name": "fresh"})
        assert_error(response, 409, code)
    async with keys.sessions() as session:
        events = await list_audit_events(session, organization_id=organization.id, action="key.updated")
    assert events == []
    assert (await stored(keys, key_id_of(revoked))).name == "gone"


# Item 22: a manager limited to some tools cannot lift the limit, on others or itself.


async def test_a_tool_limited_manager_cannot_set_allowed_tools_to_null(db_client: Client) -> None:
    client, keys = db_client
    organization = await keys.organization()
    own = await keys.key(organization, scopes=MANAGER, allowed_tools=["memory_*"])
    manager = {"x-api-key": own}
    managed = key_id_of(await keys.key(organization, allowed_tools=["memory_*"]))
    for target in (managed, key_id_of(own)):
        response = await client.patch(f"/api/keys/{target}", headers=manager, json={"allowedTools": None})
        assert_error(response, 403, "insufficient_scope")
        assert (await stored(keys, target)).allowed_tools == ["memory_*"]
    created = await client.post("/api/keys", headers=manager, json={"name": "wide", "allowedTools": None})
    assert_error(created, 403, "insufficient_scope")


def test_the_grant_check_refuses_unlimited_tools_to_a_limited_creator() -> None:
    limited = Rights(scopes=frozenset({"runtime", "keys:manage"}), allowed_tools=("memory_*",))
    with pytest.raises(NotGrantable):
        check_grant(limited, ["runtime"], None)
    check_grant(limited, ["runtime"], ["memory_*"])
