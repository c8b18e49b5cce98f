"""``bench.streams``' organization and keys (made with the store functions the CLI uses), and its
readings of the server process (Linux ``/proc``) and of the server's log."""

from __future__ import annotations

import asyncio
import json
import resource
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

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


def raise_nofile() -> dict[str, int]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return {"soft": soft, "hard": hard}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def runqueue_wait_seconds(pid: int) -> float:
    """Time the process's main thread spent runnable but waiting for a CPU (Linux schedstat)."""
    with open(f"/proc/{pid}/schedstat") as schedstat:
        return int(schedstat.read().split()[1]) / 1e9


def log_summary(log: Path) -> dict[str, Any]:
    """Requests by status, and the errors the server logged (message and last line of the exception)."""
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    for line in log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            errors[line[:160]] += 1
            continue
        if "status" in entry:
            statuses[str(entry["status"])] += 1
        if entry.get("level") in ("error", "critical"):
            last = str(entry.get("exception", "")).strip().splitlines()[-1:] or [""]
            errors[f"{entry.get('message', '')[:100]} | {last[0][:160]}"] += 1
    return {"requests_by_status": dict(statuses), "errors": dict(errors.most_common(5))}


def server_nofile(pid: int) -> str:
    with open(f"/proc/{pid}/limits") as limits:
        return next((" ".join(line.split()[3:5]) for line in limits if line.startswith("Max open files")), "?")


def percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000  # noqa: E731
    return {
        "count": len(ordered),
        "p50_ms": round(at(0.50), 2),
        "p90_ms": round(at(0.90), 2),
        "p99_ms": round(at(0.99), 2),
        "max_ms": round(ordered[-1] * 1000, 2),
    }
