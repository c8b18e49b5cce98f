"""The database's clock without a round trip per call: this host's clock plus the offset to the
database's, measured at every worker heartbeat. Runtime rows are stamped with it, so rows written
by replicas with skewed clocks still order by one clock (to within one heartbeat's drift)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from auth.dbtypes import database_now, utcnow


@dataclass(slots=True)
class DatabaseClock:
    offset: timedelta = timedelta(0)

    def now(self) -> datetime:
        return utcnow() + self.offset

    async def measure(self, session: AsyncSession) -> None:
        before = utcnow()
        database = await database_now(session)
        after = utcnow()
        self.offset = database - (before + (after - before) / 2)
