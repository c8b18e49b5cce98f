"""Seeding many API keys fast for bench.keys_scale: one argon2 hash per requested key, bulk inserts.

A key's argon2 hash covers the whole key string (``cg_live_`` + id + secret + checksum,
auth/store.py hashes ``generated.raw``), so no two keys can share a hash: every key the
benchmark presents (the *pool*, 10k by default) gets its own hash, made once per run with
the benchmark's argon2 parameters (which the servers are configured with, so nothing is
rehashed) and inserted into every database. The other rows (*filler*, up to 1M) are real
rows of the same shape in the same organization sharing the argon2 hash of the template
key (below); they are never presented. They give the table and its indexes their size.

Rows are copied from a template key made through ``store.create_api_key`` (so every column
has the value and storage format the server writes), then inserted with sqlite3
``executemany`` or asyncpg ``copy_records_to_table``; no CLI call or ORM object per key.
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg

from auth import store
from auth.dbtypes import utcnow
from auth.hashing import Argon2Parameters, SecretHasher
from auth.keys import BASE62, KEY_ID_LENGTH, generate_key
from bench import servers
from server.db import create_engine, session_factory
from server.settings import Settings

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
BATCH = 50_000


@dataclass(frozen=True)
class PoolKey:
    key_id: str
    raw: str
    key_hash: str

    def __repr__(self) -> str:  # never print a key
        return f"PoolKey({self.key_id!r})"


def make_pool(count: int, params: Argon2Parameters) -> list[PoolKey]:
    """``count`` fresh keys, each with its own argon2 hash (two threads: argon2-cffi releases the GIL)."""
    hasher = SecretHasher(params)
    generated = [generate_key("live") for _ in range(count)]
    with ThreadPoolExecutor(2) as threads:
        hashes = list(threads.map(hasher.hash, (key.raw for key in generated), chunksize=256))
    return [PoolKey(key.key_id, key.raw, key_hash) for key, key_hash in zip(generated, hashes, strict=True)]


def _filler_ids(count: int, taken: set[str]) -> Iterator[str]:
    made = 0
    while made < count:
        raw = secrets.token_bytes(KEY_ID_LENGTH * 4096)
        for start in range(0, len(raw), KEY_ID_LENGTH):
            key_id = "".join(BASE62[byte % 62] for byte in raw[start : start + KEY_ID_LENGTH])
            if key_id not in taken:
                taken.add(key_id)
                yield key_id
                made += 1
                if made == count:
                    return


def rows(
    template: Sequence[Any], columns: Sequence[str], pool: Sequence[PoolKey], total: int
) -> Iterator[tuple[Any, ...]]:
    """``total`` rows: the pool's keys first, then filler sharing one throwaway hash."""
    at = {name: index for index, name in enumerate(columns)}

    def row(key_id: str, name: str, key_hash: str) -> tuple[Any, ...]:
        values = list(template)
        values[at["id"]], values[at["name"]] = key_id, name
        values[at["display_prefix"]], values[at["key_hash"]] = "cg_live_" + key_id[:4], key_hash
        return tuple(values)

    used = pool[:total]
    for number, key in enumerate(used):
        yield row(key.key_id, f"pool-{number}", key.key_hash)
    filler_hash = template[at["key_hash"]]
    taken = {key.key_id for key in pool} | {template[at["id"]]}
    for number, key_id in enumerate(_filler_ids(total - len(used), taken)):
        yield row(key_id, f"filler-{number}", filler_hash)


def batches(items: Iterator[tuple[Any, ...]], size: int = BATCH) -> Iterator[list[tuple[Any, ...]]]:
    batch: list[tuple[Any, ...]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def _template_key(settings: Settings, params: Argon2Parameters) -> str:
    """An organization and one key made the way the CLI makes them; returns the key's id."""
    engine = create_engine(settings.resolved_database_url)
    try:
        async with session_factory(engine).begin() as session:
            organization = await store.create_organization(session, name="keyscale")
            created = await store.create_api_key(
                session,
                organization=organization,
                name="template",
                scopes=["runtime"],
                hasher=SecretHasher(params),
                created_by="bench",
            )
            # Stamped a day ago, as the copies will be: keys written within the change feed's lookback
            # would be re-read by every poll of a freshly started server (see the README).
            created.record.created_at = created.record.updated_at = utcnow() - timedelta(days=1)
        return created.record.id
    finally:
        await engine.dispose()


def _seed_sqlite(path: Path, template_id: str, pool: Sequence[PoolKey], total: int) -> None:
    with sqlite3.connect(path) as db:
        cursor = db.execute("SELECT * FROM api_keys WHERE id = ?", (template_id,))
        template = cursor.fetchone()
        columns = [description[0] for description in cursor.description]
        statement = f"INSERT INTO api_keys ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
        for batch in batches(rows(template, columns, pool, total)):
            db.executemany(statement, batch)
        db.execute("ANALYZE")


async def _seed_postgres(dsn: str, template_id: str, pool: Sequence[PoolKey], total: int) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        template = await connection.fetchrow("SELECT * FROM api_keys WHERE id = $1", template_id)
        columns = list(template.keys())
        for batch in batches(rows(list(template.values()), columns, pool, total)):
            await connection.copy_records_to_table("api_keys", records=batch, columns=columns)
        await connection.execute("ANALYZE api_keys")
    finally:
        await connection.close()


async def create_postgres_database(name: str) -> str:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


async def drop_postgres_database(name: str) -> None:
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def seed(env: dict[str, str], pool: Sequence[PoolKey], total: int, params: Argon2Parameters) -> None:
    """Migrates the database of a server's environment and fills it with ``total`` keys (the pool's first)."""
    servers.cli(env, "db", "upgrade")
    url = env.get("CAPGATE_DATABASE_URL")
    settings = Settings(data_dir=Path(env["CAPGATE_DATA_DIR"]), database_url=url)
    template_id = asyncio.run(_template_key(settings, params))
    if url:
        asyncio.run(_seed_postgres(url, template_id, pool, total - 1))
    else:
        _seed_sqlite(Path(env["CAPGATE_DATA_DIR"]) / "capgate.db", template_id, pool, total - 1)
