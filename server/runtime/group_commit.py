"""Group commit: the final writes of many concurrent tool calls share one transaction.

Each call hands over the rows it inserts (and any UPDATE statements) and waits until the
transaction holding them has committed; while one transaction commits, the next batch
gathers. A batch is written as one multi-row INSERT per table (in foreign-key order) plus
the updates, so its cost hardly grows with its size. On SQLite this also replaces many
writers queueing in the busy handler (which sleeps in steps of up to 100 ms) by one writer.
A batch that fails is retried one job at a time, so one bad job fails only its own caller.
Rows go to the driver as precompiled ``executemany`` tuples (``InsertPlan``); on SQLite a whole
batch is one trip to a writer thread with a connection of its own (``sqlite_writer.py``).
Without a running loop (no lifespan), ``submit`` writes directly.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import Executable, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault
from sqlmodel import SQLModel

from server.runtime.sqlite_writer import SqliteWriter

logger = logging.getLogger(__name__)


Row = tuple[Table, dict[str, Any]]
"""A row to insert: its table and every column's value (plain dicts: no ORM instance on the hot path)."""


@dataclass(slots=True)
class _Job:
    rows: Sequence[Row]
    statements: Sequence[Executable]
    done: anyio.Event = field(default_factory=anyio.Event)
    error: BaseException | None = None


class InsertPlan:
    """One table's INSERT for one set of columns, compiled once: the driver's SQL and each column's bind processor.

    Rows then go to the driver as tuples in one ``executemany``, past the ORM session's and the Core
    statement's per-execution work (cache keys, parameter dictionaries, ORM bulk setup). Columns the
    row leaves out get their Python-side defaults here, as ``insert(table)`` would give them.
    """

    def __init__(self, table: Table, columns: tuple[str, ...], dialect: Dialect) -> None:
        missing = [column for column in table.columns if column.name not in columns and column.default is not None]
        self.defaults: list[tuple[str, Any]] = []
        for column in missing:
            default = column.default
            if not isinstance(default, ScalarElementColumnDefault | CallableColumnDefault):
                raise NotImplementedError(f"{table.name}.{column.name}: a default the plan cannot compute")
            self.defaults.append((column.name, default))
        names = [*columns, *(name for name, _ in self.defaults)]
        compiled = insert(table).compile(dialect=dialect, column_keys=names)
        if compiled.positiontup is None:
            raise NotImplementedError(f"{dialect.name}: a named paramstyle")
        order = list(compiled.positiontup)
        self.sql = str(compiled)
        self.columns = columns
        self.positions = [names.index(name) for name in order]
        self.processors = [
            table.c[names[index]].type.dialect_impl(dialect).bind_processor(dialect) for index in self.positions
        ]

    def parameters(self, rows: Sequence[dict[str, Any]]) -> list[tuple[Any, ...]]:
        processors, positions = self.processors, self.positions
        prepared = []
        for row in rows:
            values = [row[name] for name in self.columns]
            for _name, default in self.defaults:
                values.append(default.arg if isinstance(default, ScalarElementColumnDefault) else default.arg(None))
            prepared.append(
                tuple(
                    value if processor is None or value is None else processor(value)
                    for processor, value in zip(processors, (values[index] for index in positions), strict=True)
                )
            )
        return prepared


_plans: dict[tuple[Table, tuple[str, ...], str], InsertPlan | None] = {}


def plan_for(table: Table, columns: tuple[str, ...], dialect: Dialect) -> InsertPlan | None:
    key = (table, columns, dialect.name)
    if key not in _plans:
        try:
            _plans[key] = InsertPlan(table, columns, dialect)
        except NotImplementedError:
            _plans[key] = None  # written through insert(table) instead
    return _plans[key]


@functools.cache
def table_order() -> dict[Table, int]:
    """Foreign-key order of every table (``sorted_tables`` sorts anew on each access)."""
    return {table: index for index, table in enumerate(SQLModel.metadata.sorted_tables)}


def shapes(rows: Sequence[Row]) -> list[tuple[Table, tuple[str, ...], list[dict[str, Any]]]]:
    """The rows grouped by table and column set, in foreign-key order."""
    grouped: dict[tuple[Table, tuple[str, ...]], list[dict[str, Any]]] = {}
    for table, values in rows:
        grouped.setdefault((table, tuple(values)), []).append(values)
    order = table_order()
    return [
        (table, columns, grouped[(table, columns)]) for table, columns in sorted(grouped, key=lambda s: order[s[0]])
    ]


def prepared_inserts(rows: Sequence[Row], dialect: Dialect) -> list[tuple[str, list[tuple[Any, ...]]]] | None:
    """Driver SQL and parameter tuples for every row, or None when a table needs ``insert(table)``."""
    prepared = []
    for table, columns, batch in shapes(rows):
        plan = plan_for(table, columns, dialect)
        if plan is None:
            return None
        prepared.append((plan.sql, plan.parameters(batch)))
    return prepared


async def write(session: AsyncSession, rows: Sequence[Row], statements: Sequence[Executable] = ()) -> None:
    """Inserts the rows, one ``executemany`` per table and column set in foreign-key order, then runs the statements."""
    connection = await session.connection()
    for table, columns, batch in shapes(rows):
        plan = plan_for(table, columns, connection.dialect)
        if plan is None:
            await connection.execute(insert(table), batch)
        else:
            await connection.exec_driver_sql(plan.sql, plan.parameters(batch))
    for statement in statements:
        await session.execute(statement)


SHUTDOWN_COMMIT_SECONDS = 5.0


def sqlite_writer_for(sessions: async_sessionmaker[AsyncSession]) -> SqliteWriter | None:
    """A writer of its own for a SQLite database file; None for PostgreSQL (asyncpg needs no thread hops)."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine) or engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return SqliteWriter(database, engine.dialect)


class GroupCommitter:
    def __init__(self, *, max_batch: int = 256) -> None:
        self._max_batch = max_batch
        self._queue: deque[_Job] = deque()
        self._wakeup = anyio.Event()
        self.running = False
        self._sqlite: SqliteWriter | None = None

    async def submit(
        self,
        sessions: async_sessionmaker[AsyncSession],
        rows: Sequence[Row],
        statements: Sequence[Executable] = (),
    ) -> None:
        if not self.running:
            async with sessions.begin() as session:
                await write(session, rows, statements)
            return
        job = _Job(rows, statements)
        self._queue.append(job)
        self._wakeup.set()
        await job.done.wait()
        if job.error is not None:
            raise job.error

    async def run(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sqlite = sqlite_writer_for(sessions)
        self.running = True
        try:
            while True:
                if not self._queue:
                    await self._wakeup.wait()
                    self._wakeup = anyio.Event()
                    continue
                batch = [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                with anyio.CancelScope(shield=True):
                    await self._commit(sessions, batch)
        finally:
            self.running = False
            # Jobs already queued were acknowledged to nobody yet but are owed a write: commit them before
            # giving up (bounded, so a database that went away cannot hold shutdown).
            with anyio.move_on_after(SHUTDOWN_COMMIT_SECONDS, shield=True):
                while self._queue:
                    await self._commit(
                        sessions, [self._queue.popleft() for _ in range(min(self._max_batch, len(self._queue)))]
                    )
            self._fail_queued()
            if self._sqlite is not None:
                self._sqlite.close()

    async def _commit(self, sessions: async_sessionmaker[AsyncSession], batch: list[_Job]) -> None:
        rows = [row for job in batch for row in job.rows]
        statements = [statement for job in batch for statement in job.statements]
        try:
            prepared = None
            if self._sqlite is not None and not statements:
                prepared = prepared_inserts(rows, self._sqlite.dialect)
            if prepared is not None and self._sqlite is not None:
                await self._sqlite.write(prepared)
            else:
                async with sessions.begin() as session:
                    await write(session, rows, statements)
        except Exception as exc:  # handed to the waiting caller, whose request maps it like any other error
            if len(batch) == 1:
                batch[0].error = exc
                batch[0].done.set()
                return
            logger.warning("group commit of %d jobs failed; retrying one by one", len(batch))
            for job in batch:
                await self._commit(sessions, [job])
            return
        for job in batch:
            job.done.set()

    def _fail_queued(self) -> None:
        while self._queue:
            job = self._queue.popleft()
            job.error = RuntimeError("server is shutting down")
            job.done.set()
