"""Server time of each admin console page for an organization with 1,000 keys (goal: < 100 ms).

The app runs in process (httpx ASGITransport, so the time is the server's own plus a few µs of
client), on SQLite by default or on ``--database-url``. The organization gets 1,000 keys (their
1,000 ``key.created`` audit events), 20,000 tool calls spread over the last 30 days and an
owner who signs in; each page is then fetched ``--rounds`` times.

python -m bench admin_console [--rounds 20] [--database-url postgresql+asyncpg://...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from pydantic import SecretStr
from sqlalchemy import insert

from auth import store
from auth.dbtypes import utcnow
from server.app import create_app
from server.migrate import upgrade_database
from server.runtime.models import Execution, RuntimeSession
from server.settings import Settings

RESULTS = Path(__file__).parent / "results" / "admin_console.json"
KEYS, CALLS = 1_000, 20_000
PASSWORD = "correct horse battery staple"
PAGES = ["/admin/keys", "/admin/keys/new", "/admin/keys/{key_id}", "/admin/usage", "/admin/audit", "/admin/tools"]
FAST_ARGON2 = {"argon2_time_cost": 1, "argon2_memory_cost": 1024, "argon2_parallelism": 1}


async def seed(app_state: object, organization_name: str) -> tuple[str, str]:
    state = app_state  # AppState; typed loosely to keep the benchmark import-light
    sessions = state.sessions  # type: ignore[attr-defined]
    hasher = state.hasher  # type: ignore[attr-defined]
    async with sessions.begin() as session:
        organization = await store.create_organization(session, name=organization_name)
        user = await store.create_user(
            session, organization=organization, email=f"owner-{secrets.token_hex(3)}@bench.example",
            password=PASSWORD, role="owner", hasher=hasher,
        )  # fmt: skip
        key_ids = []
        for index in range(KEYS):
            created = await store.create_api_key(
                session, organization=organization, name=f"key-{index}", scopes=["runtime"], hasher=hasher,
                allowed_tools=["memory_*"] if index % 3 == 0 else None, created_by=f"user:{user.email}",
            )  # fmt: skip
            key_ids.append(created.record.id)
        runtime_session = RuntimeSession(id=f"ses_{secrets.token_hex(8)}", organization_id=organization.id, title="b")
        session.add(runtime_session)
        await session.flush()
        now = utcnow()
        rows = [
            {
                "id": f"exe_{secrets.token_hex(10)}",
                "organization_id": organization.id,
                "session_id": runtime_session.id,
                "tool_name": ("memory_read", "memory_write", "memory_search", "memory_ls")[index % 4],
                "key_id": key_ids[index % KEYS],
                "status": "failed" if index % 17 == 0 else "succeeded",
                "started_at": now - timedelta(seconds=index * 30 * 86_400 / CALLS),
            }
            for index in range(CALLS)
        ]
        for start in range(0, CALLS, 2_000):
            await session.execute(insert(Execution), rows[start : start + 2_000])
    return user.email, key_ids[0]


async def measure(database_url: str | None, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings(
            data_dir=Path(data_dir),
            database_url=database_url,
            public_base_url="http://capgate.test",
            pepper=SecretStr("bench-" + secrets.token_hex(8)),
            **FAST_ARGON2,  # type: ignore[arg-type]
        )
        engine_app = create_app(settings)
        from server.db import create_engine

        engine = create_engine(settings.resolved_database_url)
        await upgrade_database(engine)
        await engine.dispose()
        async with LifespanManager(engine_app):
            email, key_id = await seed(engine_app.state.capgate, f"bench-{secrets.token_hex(3)}")
            transport = httpx.ASGITransport(app=engine_app)
            async with httpx.AsyncClient(transport=transport, base_url="http://capgate.test") as http:
                page = await http.get("/admin/sign-in")
                csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
                signed = await http.post("/admin/sign-in", data={"csrf": csrf, "email": email, "password": PASSWORD})
                assert signed.status_code == 303, signed.text
                timings: dict[str, dict[str, float]] = {}
                for template in PAGES:
                    path = template.format(key_id=key_id)
                    samples = []
                    for _ in range(rounds):
                        started = time.perf_counter()
                        response = await http.get(path)
                        samples.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200, (path, response.status_code)
                    timings[template] = {
                        "p50_ms": round(statistics.median(samples), 1),
                        "max_ms": round(max(samples), 1),
                        "bytes": len(response.content),
                    }
    return {
        "database": "postgresql" if database_url and database_url.startswith("postgresql") else "sqlite",
        "keys": KEYS,
        "tool_calls": CALLS,
        "rounds": rounds,
        "pages": timings,
    }


def main(args: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench admin_console")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    options = parser.parse_args(args)
    result = asyncio.run(measure(options.database_url, options.rounds))
    print(json.dumps(result, indent=2))
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    existing[str(result["database"])] = result
    RESULTS.write_text(json.dumps(existing, indent=2) + "\n")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
