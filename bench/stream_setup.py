"""The organization and keys of ``bench.streams``, made with the store functions the CLI uses."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from auth import store
from auth.hashing import SecretHasher
from server.db import create_engine, session_factory
from server.settings import Settings


async def _create(data_dir: Path) -> dict[str, str]:
    settings = Settings(data_dir=data_dir)
    engine = create_engine(settings.resolved_database_url)
    hasher = SecretHasher(settings.argon2_parameters)
    try:
        async with session_factory(engine).begin() as session:
            organization = await store.create_organization(session, name="streams")

            async def key(name: str, scopes: list[str]) -> store.CreatedKey:
                return await store.create_api_key(
                    session, organization=organization, name=name, scopes=scopes, hasher=hasher, created_by="bench"
                )

            executions = await key("executions", ["runtime"])
            mcp = await key("mcp", ["runtime"])
            manage = await key("manage", ["keys:manage", "runtime"])
        return {
            "executions": executions.secret,
            "mcp": mcp.secret,
            "mcp_key_id": mcp.record.id,
            "manage": manage.secret,
        }
    finally:
        await engine.dispose()


def create_stream_keys(data_dir: Path) -> dict[str, str]:
    """Key E (executions and their streams), key M (MCP sessions), a keys:manage key; M's id too."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, _create(data_dir)).result()
