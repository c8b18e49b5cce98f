"""Tool input is validated strictly: JSON types as the schema says, no coercion."""

import httpx
import pytest

from tests.helpers import KeyFactory
from tests.runtime_helpers import invoke


@pytest.mark.parametrize("limit", [True, "7", 7.5])
async def test_a_limit_of_the_wrong_json_type_is_refused(
    client: httpx.AsyncClient, keys: KeyFactory, limit: object
) -> None:
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "memory_search", {"query": "x", "limit": limit})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid_request" and "limit" in response.json()["details"]


async def test_a_well_typed_limit_is_accepted(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    response = await invoke(client, key, "memory_search", {"query": "x", "limit": 7})
    assert response.status_code == 200 and response.json()["isError"] is False


async def test_idempotency_compares_the_validated_input(client: httpx.AsyncClient, keys: KeyFactory) -> None:
    key = await keys.key(await keys.organization())
    retry = {"Idempotency-Key": "countdown-1"}
    first = await invoke(client, key, "example_countdown", {"steps": 1, "interval_ms": 0}, headers=retry)
    same = await invoke(client, key, "example_countdown", {"interval_ms": 0, "steps": 1}, headers=retry)
    assert same.json() == first.json()
    spelled_out = {"Idempotency-Key": "countdown-2"}
    first = await invoke(client, key, "example_countdown", {"steps": 1}, headers=spelled_out)
    with_default = await invoke(client, key, "example_countdown", {"steps": 1, "interval_ms": 100}, headers=spelled_out)
    assert with_default.status_code == 200 and with_default.json() == first.json()
