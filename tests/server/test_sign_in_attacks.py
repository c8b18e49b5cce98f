"""Attacks on POST /api-keys (HTTP Basic sign-in): guesses that arrive together, anonymous floods."""

from __future__ import annotations

import asyncio
import secrets
import threading

import anyio
import anyio.to_thread
import httpx
import pytest
from starlette.applications import Starlette

from auth.basic import BasicCredentials, InvalidCredentials, PasswordAuthenticator
from auth.errors import RateLimited
from auth.hashing import Argon2Parameters, SecretHasher
from auth.models import User
from server.state import AppState
from tests.helpers import DEFAULT_PASSWORD, KeyFactory, basic

HASHER = SecretHasher(Argon2Parameters(time_cost=1, memory_cost=1024, parallelism=1))
ATTACKER = ("203.0.113.9", 40000)
HONEST = ("198.51.100.7", 50000)


async def test_password_guesses_arriving_together_stop_at_the_limit() -> None:
    """Issue 18 item 8: 40 simultaneous wrong passwords for one email (limit 5) ran 40 verifications."""
    user = User(id="usr_1", organization_id="org_1", email="a@example.com", password_hash=HASHER.hash("x" * 12))

    async def load(email: str) -> User | None:
        return user if email == user.email else None

    passwords = PasswordAuthenticator(load_user=load, hasher=HASHER, failure_limit=5, window=300)

    async def guess(index: int) -> str:
        try:
            await passwords.authenticate(BasicCredentials(user.email, f"guess {index}"), source=f"10.0.0.{index}")
        except InvalidCredentials:
            return "401"
        except RateLimited as limited:
            assert int(limited.headers()["Retry-After"]) >= 1
            return "429"
        return "200"

    with anyio.fail_after(10):
        answers = await asyncio.gather(*(guess(index) for index in range(40)))
    assert answers.count("401") == 5 and answers.count("429") == 35
    assert passwords.argon2_runs == 5


def client_from(app: Starlette, address: tuple[str, int]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=address), base_url="http://capgate.test")


async def test_a_flood_of_anonymous_sign_ins_does_not_starve_a_real_one(
    app: Starlette, state: AppState, keys: KeyFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 14 item 4: 200 concurrent wrong sign-ins for random emails from one address held the argon2
    queue; a correct sign-in from elsewhere waited seconds. The attacker's verifications are held
    open here, so the honest sign-in can only answer if it is not queued behind the flood."""
    user = await keys.user(await keys.organization())
    entered, release = threading.Event(), threading.Event()
    real_verify = state.hasher.verify

    def verify(stored_hash: str, secret: str) -> bool:
        if secret == "attacker guess":
            entered.set()
            release.wait(10)
        return real_verify(stored_hash, secret)

    monkeypatch.setattr(state.hasher, "verify", verify)
    runs_before = state.passwords.argon2_runs
    async with client_from(app, ATTACKER) as attacker, client_from(app, HONEST) as honest:

        async def attack() -> httpx.Response:
            email = f"nobody-{secrets.token_hex(4)}@example.com"
            return await attacker.post("/api-keys", headers=basic(email, "attacker guess"), json={"name": "x"})

        try:
            with anyio.fail_after(15):
                flood = [asyncio.create_task(attack()) for _ in range(200)]
                await anyio.to_thread.run_sync(entered.wait, 10)
                refused = await _done(flood, at_least=190)
                assert all(r.status_code == 429 and int(r.headers["retry-after"]) >= 1 for r in refused)
                good = await honest.post("/api-keys", headers=basic(user.email, DEFAULT_PASSWORD), json={"name": "x"})
                assert good.status_code == 201, good.text
        finally:
            release.set()
        with anyio.fail_after(15):
            answers = await asyncio.gather(*flood)
    statuses = [response.status_code for response in answers]
    assert statuses.count(429) >= 195 and statuses.count(401) == 200 - statuses.count(429)
    # The flood cost at most one address's worth of queued verifications.
    assert state.passwords.argon2_runs - runs_before <= state.settings.login_max_pending_per_source + 1


async def _done(tasks: list[asyncio.Task[httpx.Response]], *, at_least: int) -> list[httpx.Response]:
    """The answers already given, once at least ``at_least`` tasks have finished."""
    while sum(task.done() for task in tasks) < at_least:
        await asyncio.sleep(0)  # yield to the event loop; the enclosing fail_after bounds the wait
    return [task.result() for task in tasks if task.done()]
