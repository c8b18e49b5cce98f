"""Database access bound to one organization: the only database a tool handler gets (``ctx.db``).

A tool builds ordinary SQLAlchemy statements (``select``, ``insert``, ``update``, ``delete``,
the dialects' upserts) and runs them through an ``OrganizationSession``, which first checks
that the statement can only touch the organization's rows and then binds it to them:

- a statement reads or writes exactly one table: a SQLModel table with an ``organization_id``
  column whose model opted in (``TOOL_TABLE`` in its table info; the server's own tables never
  do); no joins, aliases, subqueries, CTEs or unions, no columns of anything else;
- no raw SQL anywhere (``text()``, literal columns other than ``*``, prefixes, suffixes, hints,
  custom operators, collations, names that are not plain identifiers)
  and only functions from a small list (aggregates and string helpers), so nothing can change
  the session, read a setting or call into another table;
- ``SELECT``, ``UPDATE`` and ``DELETE`` gain ``WHERE organization_id = <the organization>``;
  an ``UPDATE`` or upsert may not change ``organization_id``;
- an ``INSERT`` must give ``organization_id`` = the organization for every row, may not insert
  from a select, and an upsert's conflict target must include ``organization_id`` (so the row it
  updates is the organization's own).

A refused statement raises ``ForbiddenStatement`` before anything reaches the database.
Plugins run in the server's process, so this bounds what a tool can express through
``ctx.db``, not what Python code can reach by introspection: install only plugins you trust.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Delete, Insert, Select, Table, Update, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql import visitors
from sqlalchemy.sql.elements import BindParameter, CollationClause, ColumnClause, TextClause
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.sql.selectable import Alias, FromClause, ScalarSelect, SelectBase
from sqlmodel import SQLModel, col

from auth.models import Organization

ORGANIZATION_COLUMN = "organization_id"
ALLOWED_FUNCTIONS = frozenset(
    {"count", "sum", "min", "max", "avg", "coalesce", "length", "lower", "upper", "substr", "abs", "now"}
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A table is open to tools only when its model opts in: ``__table_args__ = ({"info": TOOL_TABLE},)``.
TOOL_TABLE = {"capgate_tool_data": True}
Statement = Any  # a Select, Insert, Update or Delete, checked at run time


class ForbiddenStatement(PermissionError):
    """A statement that could reach beyond the organization's rows; nothing was executed."""


def _is_identifier(name: object) -> bool:
    return isinstance(name, str) and _IDENTIFIER.fullmatch(name) is not None


def _is_open_to_tools(table: Table) -> bool:
    """An opted-in table of the models' metadata (not a look-alike ``Table`` built to pass as one),
    with plain identifiers for names (a ``quoted_name(..., quote=False)`` would be pasted into SQL)."""
    return (
        SQLModel.metadata.tables.get(table.key) is table
        and table.schema is None
        and bool(table.info.get("capgate_tool_data"))
        and ORGANIZATION_COLUMN in table.c
        and _is_identifier(table.name)
        and all(_is_identifier(column.name) for column in table.c)
    )


def _table_of(statement: Statement) -> Table:
    if isinstance(statement, Insert | Update | Delete):
        target: Any = statement.table
    else:
        froms = statement.get_final_froms()
        target = froms[0] if len(froms) == 1 else None
    if not isinstance(target, Table):
        raise ForbiddenStatement("a statement must use exactly one table (no joins, aliases or subqueries)")
    if not _is_open_to_tools(target):
        raise ForbiddenStatement(f"table {target.name!r} is not available to tools")
    return target


def _check_element(element: Any, table: Table, root: Statement) -> None:
    if element is root or element is table:
        return
    if isinstance(element, TextClause):
        raise ForbiddenStatement("raw SQL is not available to tools")
    if isinstance(element, SelectBase | ScalarSelect):
        raise ForbiddenStatement("subqueries are not available to tools")
    if isinstance(element, Alias):
        if _is_excluded(element, root, table):
            return
        raise ForbiddenStatement("aliases are not available to tools")
    if isinstance(element, FunctionElement) and str(getattr(element, "name", "")).lower() not in ALLOWED_FUNCTIONS:
        raise ForbiddenStatement(f"function {getattr(element, 'name', '?')!r} is not available to tools")
    if isinstance(element, FromClause) and not isinstance(element, FunctionElement):
        raise ForbiddenStatement("a statement must use exactly one table (no joins, aliases or subqueries)")
    if isinstance(element, ColumnClause) and element.is_literal:
        if element.name != "*":
            raise ForbiddenStatement("literal SQL columns are not available to tools")
    elif (
        isinstance(element, ColumnClause)
        and element.table is not table
        and not _is_excluded(element.table, root, table)
    ):
        raise ForbiddenStatement("a statement must use exactly one table (no joins, aliases or subqueries)")
    if isinstance(element, CollationClause) or isinstance(getattr(element, "operator", None), custom_op):
        raise ForbiddenStatement("custom operators and collations are not available to tools")


def _is_excluded(element: Any, root: Statement, table: Table) -> bool:
    """The ``excluded`` row of an upsert on the table."""
    return (
        isinstance(element, Alias)
        and isinstance(root, Insert)
        and element.name == "excluded"
        and element.element is table
    )


def _check_insert(statement: Insert, table: Table, organization_id: str) -> None:
    if statement.select is not None:
        raise ForbiddenStatement("INSERT … SELECT is not available to tools")
    compiled = statement.compile()
    named = [key for key in compiled.params if key == ORGANIZATION_COLUMN or key.startswith(ORGANIZATION_COLUMN + "_m")]
    if not named or any(compiled.params[key] != organization_id for key in named):
        raise ForbiddenStatement(f"every inserted row needs {ORGANIZATION_COLUMN} = the calling organization")
    conflict = statement._post_values_clause
    if conflict is not None:
        targets = [
            str(getattr(item, "name", item)) for item in getattr(conflict, "inferred_target_elements", None) or []
        ]
        if ORGANIZATION_COLUMN not in targets:
            raise ForbiddenStatement(f"an upsert's conflict target must include {ORGANIZATION_COLUMN}")
        _refuse_changing_organization(getattr(conflict, "update_values_to_set", None) or {})


def _refuse_changing_organization(changes: Any) -> None:
    keys = changes.keys() if isinstance(changes, Mapping) else [key for key, _ in changes]
    if ORGANIZATION_COLUMN in {str(getattr(key, "key", key)) for key in keys}:
        raise ForbiddenStatement(f"{ORGANIZATION_COLUMN} cannot be changed")


def bind_to_organization(statement: Statement, organization_id: str) -> Statement:
    """The statement limited to the organization's rows, or ``ForbiddenStatement``."""
    if not isinstance(statement, Select | Insert | Update | Delete):
        raise ForbiddenStatement("only SELECT, INSERT, UPDATE and DELETE statements are available to tools")
    if any(getattr(statement, name, None) for name in ("_prefixes", "_suffixes", "_hints", "_statement_hints")):
        raise ForbiddenStatement("raw SQL prefixes, suffixes and hints are not available to tools")
    table = _table_of(statement)
    for element in visitors.iterate(statement):
        _check_element(element, table, statement)
    if isinstance(statement, Insert):
        _check_insert(statement, table, organization_id)
        return statement
    if isinstance(statement, Update):
        _refuse_changing_organization(statement._values or {})
    mine = table.c[ORGANIZATION_COLUMN] == BindParameter(None, organization_id, unique=True)
    return statement.where(mine)


@dataclass(frozen=True, slots=True)
class OrganizationSession:
    """Runs statements bound to one organization (see the module docstring)."""

    organization_id: str
    _session: AsyncSession = field(repr=False)

    async def execute(self, statement: Statement) -> Any:
        return await self._session.execute(bind_to_organization(statement, self.organization_id))

    async def insert_many(self, statement: Insert, rows: list[dict[str, Any]]) -> None:
        """One INSERT for many rows (executemany); every row must belong to the organization."""
        if any(row.get(ORGANIZATION_COLUMN) != self.organization_id for row in rows):
            raise ForbiddenStatement(f"every inserted row needs {ORGANIZATION_COLUMN} = the calling organization")
        table = _table_of(statement)
        if statement._values or statement.select is not None or statement._post_values_clause is not None:
            raise ForbiddenStatement("insert_many takes a bare insert(table) and its rows")
        for element in visitors.iterate(statement):
            _check_element(element, table, statement)
        if rows:
            await self._session.execute(statement, rows)

    async def rows(self, statement: Statement) -> Sequence[Any]:
        return list((await self.execute(statement)).all())

    async def scalar(self, statement: Statement) -> Any:
        return (await self.execute(statement)).scalar_one_or_none()

    async def lock_organization(self) -> None:
        """Serialises this transaction with the organization's other locking transactions until it ends
        (PostgreSQL: a row lock on the organization; SQLite serialises every writer already)."""
        if self._session.get_bind().dialect.name == "postgresql":
            query = select(col(Organization.id)).where(col(Organization.id) == self.organization_id)
            await self._session.execute(query.with_for_update(key_share=True))


@dataclass(frozen=True, slots=True)
class OrganizationDatabase:
    """``ctx.db``: sessions bound to one organization. It has no way to name another organization."""

    organization_id: str
    _sessions: async_sessionmaker[AsyncSession] = field(repr=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[OrganizationSession]:
        """One transaction, committed on success and rolled back on error."""
        async with self._sessions.begin() as session:
            yield OrganizationSession(self.organization_id, session)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[OrganizationSession]:
        """For reads (no explicit transaction)."""
        async with self._sessions() as session:
            yield OrganizationSession(self.organization_id, session)

    @property
    def dialect(self) -> str:
        bind = self._sessions.kw["bind"]
        return str(bind.dialect.name)
