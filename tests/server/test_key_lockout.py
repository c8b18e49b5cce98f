"""Issue 14 item 3: wrong secrets for a public key id must not lock out the key's real holder."""

from __future__ import annotations

from pathlib import Path

import anyio
import httpx
from starlette.applications import Starlette

from auth.keys import format_key, random_base62
from server.state import AppState
from tests.conftest import migrate
from tests.helpers import KeyFactory, factory_for, key_id_of, make_settings, running_app

ATTACKER = ("203.0.113.9", 40000)
HOLDER = ("198.51.100.7", 50000)


def client_from(app: Starlette, address: tuple[str, int]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=address), base_url="http://capgate.test")


def wrong_secret_for(key: str) -> str:
    return format_key("live", key_id_of(key), random_base62(32))


async def test_a_flood_of_wrong_secrets_does_not_lock_out_the_real_key(
    app: Starlette, state: AppState, keys: KeyFactory
) -> None:
    """Only the public key id is needed for the attack; the key was never used in this process."""
    key = await keys.key(await keys.organization())
    loads_before, runs_before = state.verifier.stats.record_loads, state.verifier.stats.argon2_runs
    async with client_from(app, ATTACKER) as attacker, client_from(app, HOLDER) as holder:
        with anyio.fail_after(10):
            for _ in range(40):
                response = await attacker.get("/capabilities", headers={"x-api-key": wrong_secret_for(key)})
                assert response.status_code in (401, 429)
            answer = await holder.get("/capabilities", headers={"x-api-key": key})
    assert answer.status_code == 200, answer.text
    assert state.verifier.stats.record_loads > loads_before  # the key was not cached before the flood
    # argon2 ran at most failed_verification_limit times for the flood, plus once for the real key.
    assert state.verifier.stats.argon2_runs - runs_before <= state.settings.failed_verification_limit + 1


async def test_one_address_cannot_spend_unbounded_argon2_across_key_ids(tmp_path: Path, sqlite_url: str) -> None:
    await migrate(sqlite_url)
    settings = make_settings(tmp_path, sqlite_url, failed_verification_source_limit=8)
    async with running_app(settings) as (app, _):
        state: AppState = app.state.capgate
        keys = factory_for(app)
        organization = await keys.organization()
        ids = [await keys.key(organization) for _ in range(3)]  # 3 ids x 5 per id would allow 15 runs
        runs_before = state.verifier.stats.argon2_runs
        async with client_from(app, ATTACKER) as attacker:
            with anyio.fail_after(20):
                for index in range(20):
                    response = await attacker.get(
                        "/capabilities", headers={"x-api-key": wrong_secret_for(ids[index % 3])}
                    )
        assert state.verifier.stats.argon2_runs - runs_before == 8
        assert response.status_code == 429 and int(response.headers["retry-after"]) >= 1
        async with client_from(app, HOLDER) as holder:  # another address is not affected
            assert (await holder.get("/capabilities", headers={"x-api-key": ids[0]})).status_code == 200
