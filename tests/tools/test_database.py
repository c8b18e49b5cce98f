"""The org-bound session refuses, before any I/O, every statement that could reach another organization."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tools.database import ForbiddenStatement, bind_to_organization
from tools.memory.models import DOCUMENTS as D

ORG = "org_mine"


def sql(statement: object) -> str:
    return str(bind_to_organization(statement, ORG).compile(compile_kwargs={"literal_binds": True}))


def test_reads_updates_and_deletes_gain_the_organization_filter() -> None:
    assert "memory_documents.organization_id = 'org_mine'" in sql(select(func.count()).select_from(D))
    assert "memory_documents.organization_id = 'org_mine'" in sql(D.update().values(content="x"))
    assert "memory_documents.organization_id = 'org_mine'" in sql(D.delete().where(D.c.path == "/a"))


@pytest.mark.parametrize("insert", [pg_insert, sqlite_insert])
def test_an_upsert_must_conflict_on_the_organizations_own_rows(insert: object) -> None:
    statement = insert(D).values(organization_id=ORG, path="/a", content="x", size=1)  # type: ignore[operator]
    own = statement.on_conflict_do_update(
        index_elements=["organization_id", "path"], set_={"content": statement.excluded.content}
    )
    bind_to_organization(own, ORG)
    by_id = statement.on_conflict_do_update(index_elements=["id"], set_={"content": statement.excluded.content})
    with pytest.raises(ForbiddenStatement, match="conflict target"):
        bind_to_organization(by_id, ORG)


def test_every_inserted_row_must_be_the_organizations() -> None:
    rows = [{"organization_id": ORG, "path": "/a"}, {"organization_id": "org_theirs", "path": "/b"}]
    with pytest.raises(ForbiddenStatement, match="every inserted row"):
        bind_to_organization(D.insert().values(rows), ORG)
    with pytest.raises(ForbiddenStatement, match="every inserted row"):
        bind_to_organization(D.insert().values(path="/a", content="x", size=1), ORG)


def test_hints_prefixes_and_unlisted_functions_are_refused() -> None:
    for statement in (
        select(D.c.path).prefix_with("/*+ anything */"),
        select(D.c.path).with_statement_hint("anything"),
        select(D.c.path, func.pg_sleep(1)),
        select(D.c.path).where(func.current_setting("capgate.organization_id") == ORG),
    ):
        with pytest.raises(ForbiddenStatement):
            bind_to_organization(statement, ORG)


def test_sql_smuggled_through_names_operators_and_look_alike_tables_is_refused() -> None:
    from sqlalchemy import Column, MetaData, String, Table, column
    from sqlalchemy.sql.elements import quoted_name

    from tools.database import TOOL_TABLE

    look_alike = Table(
        "api_keys", MetaData(), Column("organization_id", String), Column("key_hash", String), info=TOOL_TABLE
    )
    for statement in (
        select(look_alike.c.key_hash),
        select(D.c.path).where(D.c.path.op("OR 1=1 OR")("x")),
        select(D.c.path).where(D.c.path.collate("C") == "x"),
        select(D.c.path, column(quoted_name("key_hash FROM api_keys --", quote=False))),
        select(D.c.path).add_cte(select(D.c.path).cte("c")),
    ):
        with pytest.raises(ForbiddenStatement):
            bind_to_organization(statement, ORG)
