import anyio
import httpx

from tests.helpers import KeyFactory
from tests.runtime_helpers import headers, invoke

APPENDS = 50


async def test_concurrent_appends_all_land(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    key = await keys.key(await keys.organization())
    outcomes: list[int] = []

    async def append(index: int) -> None:
        response = await invoke(client, key, "memory_append", {"path": "/daily/log.md", "content": f"<{index}>\n"})
        outcomes.append(response.status_code)
        assert response.json()["isError"] is False, response.json()

    async with anyio.create_task_group() as tasks:
        for index in range(APPENDS):
            tasks.start_soon(append, index)
    assert outcomes == [200] * APPENDS
    content = (await invoke(client, key, "memory_read", {"path": "/daily/log.md"})).json()["result"]["content"]
    lines = content.splitlines()
    assert sorted(lines) == sorted(f"<{index}>" for index in range(APPENDS))


async def test_concurrent_invokes_with_one_idempotency_key_run_once(
    db_client: tuple[httpx.AsyncClient, KeyFactory],
) -> None:
    client, keys = db_client
    key = await keys.key(await keys.organization())
    bodies: list[dict[str, object]] = []

    async def call() -> None:
        response = await client.post(
            "/api/runtime/tools/memory_append",
            json={"input": {"path": "/once.md", "content": "x"}},
            headers=headers(key, **{"Idempotency-Key": "retry-1"}),
        )
        assert response.status_code == 200
        bodies.append(response.json())

    async with anyio.create_task_group() as tasks:
        for _ in range(5):
            tasks.start_soon(call)
    assert all(body == bodies[0] for body in bodies)
    assert (await invoke(client, key, "memory_read", {"path": "/once.md"})).json()["result"]["content"] == "x"


async def test_idempotency_waits_for_a_running_first_call(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    key = await keys.key(await keys.organization())
    bodies: list[dict[str, object]] = []

    async def call() -> None:
        response = await invoke(
            client, key, "example_countdown", {"steps": 3, "interval_ms": 100}, headers={"Idempotency-Key": "slow"}
        )
        bodies.append(response.json())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(call)
        tasks.start_soon(call)
    assert bodies[0] == bodies[1] and bodies[0]["result"] == {"steps": 3, "done": True}


async def test_idempotency_key_reused_with_another_body(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    org = await keys.organization()
    key = await keys.key(org)
    first = await invoke(client, key, "example_echo", {"text": "a"}, headers={"Idempotency-Key": "k1"})
    again = await invoke(client, await keys.key(org), "example_echo", {"text": "a"}, headers={"Idempotency-Key": "k1"})
    assert again.json() == first.json()
    other = await invoke(client, key, "example_echo", {"text": "b"}, headers={"Idempotency-Key": "k1"})
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    elsewhere = await invoke(
        client,
        await keys.key(await keys.organization()),
        "example_echo",
        {"text": "b"},
        headers={"Idempotency-Key": "k1"},
    )
    assert elsewhere.status_code == 200 and elsewhere.json()["result"] == {"text": "b"}


async def test_failed_first_call_is_replayed_too(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    key = await keys.key(await keys.organization())
    first = await invoke(client, key, "example_fail", {"message": "m"}, headers={"Idempotency-Key": "f"})
    again = await invoke(client, key, "example_fail", {"message": "m"}, headers={"Idempotency-Key": "f"})
    assert first.json() == again.json() and first.json()["isError"] is True


async def test_bad_idempotency_key_is_refused(db_client: tuple[httpx.AsyncClient, KeyFactory]) -> None:
    client, keys = db_client
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "example_echo", {"text": "a"}, headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["details"]
