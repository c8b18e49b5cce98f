"""Issue 14 item 13: the data directory and the SQLite files are private to the server's user."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from tests.conftest import migrate
from tests.helpers import factory_for, make_settings, running_app


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_world_readable_sqlite_files_and_data_dir(tmp_path: Path) -> None:
    """Attack: another local user reads key hashes and tenants' data from var/capgate.db and its WAL."""
    previous = os.umask(0o022)  # the usual umask, under which files used to come out 0644
    try:
        data_dir = tmp_path / "fresh" / "var"
        settings = make_settings(data_dir, None, pepper=None)
        await migrate(settings.resolved_database_url)
        async with running_app(settings) as (application, http):
            keys = factory_for(application)
            key = await keys.key(await keys.organization())
            response = await http.post(
                "/api/runtime/tools/example_echo", json={"input": {"text": "secret"}}, headers={"x-api-key": key}
            )
            assert response.status_code == 200
            files = sorted(data_dir.glob("capgate.db*"))
            assert {path.name for path in files} >= {"capgate.db", "capgate.db-wal", "capgate.db-shm"}
            assert all(mode(path) == 0o600 for path in files)  # the migration lock file too
            assert mode(data_dir) == 0o700
            assert {path.name: mode(path) for path in [*files, data_dir / "pepper"]} == {
                path.name: 0o600 for path in [*files, data_dir / "pepper"]
            }
    finally:
        os.umask(previous)
