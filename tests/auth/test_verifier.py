"""KeyVerifier on its own: what it caches, and how many argon2 runs each path costs."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from auth.dbtypes import utcnow
from auth.errors import ExpiredApiKey, InvalidApiKey, RevokedApiKey
from auth.hashing import Argon2Parameters, SecretHasher
from auth.keys import ParsedKey, format_key, generate_key, random_base62
from auth.records import KeyRecord
from auth.verifier import KeyVerifier

FAST = Argon2Parameters(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.value = 0.0

    def __call__(self) -> float:
        return self.value


class Store:
    def __init__(self, hasher: SecretHasher) -> None:
        self.records: dict[str, KeyRecord] = {}
        self.loads = 0
        self.hasher = hasher

    def add(self, **changes: object) -> str:
        key = generate_key()
        record = KeyRecord(
            key_id=key.key_id,
            organization_id="org_a",
            name="k",
            scopes=("runtime",),
            allowed_tools=None,
            expires_at=None,
            revoked_at=None,
            updated_at=utcnow(),
            key_hash=self.hasher.hash(key.raw),
        )
        self.records[key.key_id] = replace(record, **changes)  # type: ignore[arg-type]
        return key.raw

    async def load(self, key_id: str) -> KeyRecord | None:
        self.loads += 1
        return self.records.get(key_id)


@pytest.fixture
def hasher() -> SecretHasher:
    return SecretHasher(FAST)


@pytest.fixture
def store(hasher: SecretHasher) -> Store:
    return Store(hasher)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(store: Store, hasher: SecretHasher, clock: Clock) -> KeyVerifier:
    return KeyVerifier(load_record=store.load, hasher=hasher, pepper=b"pepper", failure_limit=3, monotonic=clock)


def wrong_secret_for(key: str) -> str:
    return format_key("live", key[8:20], random_base62(32))


async def test_warm_key_costs_one_argon2_run_and_one_lookup(verifier: KeyVerifier, store: Store) -> None:
    key = store.add()
    for _ in range(20):
        record = await verifier.verify(key)
        assert record.organization_id == "org_a"
    assert verifier.stats.argon2_runs == 1
    assert store.loads == 1


async def test_bad_checksum_never_reaches_storage_or_argon2(verifier: KeyVerifier, store: Store) -> None:
    key = store.add()
    broken = key[:-1] + ("A" if key[-1] != "A" else "B")
    with pytest.raises(InvalidApiKey):
        await verifier.verify(broken)
    assert store.loads == 0
    assert verifier.stats.argon2_runs == 0


async def test_unknown_id_is_invalid_without_argon2(verifier: KeyVerifier) -> None:
    with pytest.raises(InvalidApiKey):
        await verifier.verify(generate_key().raw)
    assert verifier.stats.argon2_runs == 0


async def test_repeated_wrong_secret_runs_argon2_once(verifier: KeyVerifier, store: Store) -> None:
    wrong = wrong_secret_for(store.add())
    for _ in range(10):
        with pytest.raises(InvalidApiKey):
            await verifier.verify(wrong)
    assert verifier.stats.argon2_runs == 1


async def test_distinct_wrong_secrets_stop_costing_argon2_after_the_limit(verifier: KeyVerifier, store: Store) -> None:
    key = store.add()
    for _ in range(10):
        with pytest.raises(InvalidApiKey):
            await verifier.verify(wrong_secret_for(key))
    assert verifier.stats.argon2_runs == 3


async def test_a_verified_key_is_not_locked_out_by_a_wrong_secret_flood(verifier: KeyVerifier, store: Store) -> None:
    key = store.add()
    await verifier.verify(key)
    for _ in range(10):
        with pytest.raises(InvalidApiKey):
            await verifier.verify(wrong_secret_for(key))
    assert (await verifier.verify(key)).key_id == key[8:20]


async def test_throttle_ends_with_its_window(verifier: KeyVerifier, store: Store, clock: Clock) -> None:
    key = store.add()
    for _ in range(5):
        with pytest.raises(InvalidApiKey):
            await verifier.verify(wrong_secret_for(key))
    clock.value += 61
    assert (await verifier.verify(key)).key_id == key[8:20]


async def test_revoked_key_is_reported_only_with_the_right_secret(verifier: KeyVerifier, store: Store) -> None:
    key = store.add(revoked_at=utcnow())
    with pytest.raises(RevokedApiKey):
        await verifier.verify(key)
    with pytest.raises(InvalidApiKey) as wrong:
        await verifier.verify(wrong_secret_for(key))
    assert type(wrong.value) is InvalidApiKey


async def test_expired_key_is_reported(verifier: KeyVerifier, store: Store) -> None:
    key = store.add(expires_at=utcnow() - timedelta(seconds=1))
    with pytest.raises(ExpiredApiKey):
        await verifier.verify(key)


async def test_concurrent_first_requests_share_one_argon2_run(verifier: KeyVerifier, store: Store) -> None:
    key = store.add()
    records = await asyncio.gather(*(verifier.verify(key) for _ in range(25)))
    assert {record.key_id for record in records} == {key[8:20]}
    assert verifier.stats.argon2_runs == 1


async def test_refresh_applies_revocation_to_a_warm_key(verifier: KeyVerifier, store: Store) -> None:
    key = store.add()
    record = await verifier.verify(key)
    verifier.refresh(replace(record, revoked_at=utcnow(), updated_at=utcnow() + timedelta(seconds=1)))
    with pytest.raises(RevokedApiKey):
        await verifier.verify(key)
    assert verifier.stats.argon2_runs == 1


async def test_record_ttl_reloads_from_storage(verifier: KeyVerifier, store: Store, clock: Clock) -> None:
    key = store.add()
    await verifier.verify(key)
    store.records[key[8:20]] = replace(store.records[key[8:20]], revoked_at=utcnow())
    clock.value += 31
    with pytest.raises(RevokedApiKey):
        await verifier.verify(key)


def add_weakly_hashed_key(store: Store, **changes: Any) -> ParsedKey:
    """A key hashed with outdated (cheap) parameters: a successful check wants to rehash it."""
    weak = SecretHasher(Argon2Parameters(time_cost=1, memory_cost=512, parallelism=1))
    key = generate_key()
    record = KeyRecord(
        key_id=key.key_id,
        organization_id="org_a",
        name="k",
        scopes=("runtime",),
        allowed_tools=None,
        expires_at=None,
        revoked_at=None,
        updated_at=utcnow(),
        key_hash=weak.hash(key.raw),
    )
    store.records[key.key_id] = replace(record, **changes)
    return key


def rehashing_verifier(store: Store, hasher: SecretHasher, saved: dict[str, str]) -> KeyVerifier:
    async def save(key_id: str, new_hash: str) -> None:
        saved[key_id] = new_hash

    return KeyVerifier(load_record=store.load, save_rehashed=save, hasher=hasher, pepper=b"p")


async def test_outdated_hash_parameters_are_rehashed_on_success(store: Store, hasher: SecretHasher) -> None:
    key = add_weakly_hashed_key(store)
    saved: dict[str, str] = {}
    await rehashing_verifier(store, hasher, saved).verify(key.raw)
    assert not hasher.needs_rehash(saved[key.key_id])
    assert hasher.verify(saved[key.key_id], key.raw)


@pytest.mark.parametrize("ended", ["revoked", "expired"])
async def test_a_revoked_or_expired_key_is_not_rehashed(store: Store, hasher: SecretHasher, ended: str) -> None:
    """Rehashing writes the key's row: a key that may no longer be used gets no write."""
    past = utcnow() - timedelta(hours=1)
    key = add_weakly_hashed_key(store, **({"revoked_at": past} if ended == "revoked" else {"expires_at": past}))
    saved: dict[str, str] = {}
    with pytest.raises(RevokedApiKey if ended == "revoked" else ExpiredApiKey):
        await rehashing_verifier(store, hasher, saved).verify(key.raw)
    assert saved == {}


async def test_a_load_racing_a_revocation_does_not_put_the_old_record_back(verifier: KeyVerifier, store: Store) -> None:
    """Issue 18 item 1: a cold load that read the row before the revocation committed finishes after
    forget(); the next request must still see the revocation, not the old record for the cache TTL."""
    key = store.add()
    key_id = key[8:20]
    old = store.records[key_id]
    load_started, release_load = asyncio.Event(), asyncio.Event()

    async def slow_load(requested: str) -> KeyRecord | None:
        seen = store.records.get(requested)  # read before the revocation commits ...
        load_started.set()
        await release_load.wait()  # ... and come back after it did
        return seen

    verifier._load_record = slow_load
    in_flight = asyncio.create_task(verifier.verify(key))
    await load_started.wait()
    store.records[key_id] = replace(old, revoked_at=utcnow(), updated_at=utcnow() + timedelta(seconds=1))
    verifier.forget(key_id)  # what the revoking request does after its commit
    release_load.set()
    await in_flight  # began before the revocation: may still pass
    verifier._load_record = store.load
    with pytest.raises(RevokedApiKey):
        await verifier.verify(key)


async def test_a_load_racing_a_feed_refresh_keeps_the_newer_record(verifier: KeyVerifier, store: Store) -> None:
    key = store.add()
    key_id = key[8:20]
    old = store.records[key_id]
    load_started, release_load = asyncio.Event(), asyncio.Event()

    async def slow_load(requested: str) -> KeyRecord | None:
        seen = store.records.get(requested)
        load_started.set()
        await release_load.wait()
        return seen

    verifier._load_record = slow_load
    in_flight = asyncio.create_task(verifier.verify(key))
    await load_started.wait()
    revoked = replace(old, revoked_at=utcnow(), updated_at=utcnow() + timedelta(seconds=1))
    store.records[key_id] = revoked
    verifier.refresh(revoked)  # the change feed saw another process revoke it
    release_load.set()
    await in_flight
    verifier._load_record = store.load
    with pytest.raises(RevokedApiKey):
        await verifier.verify(key)
