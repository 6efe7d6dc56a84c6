"""Small SQL constructs whose spelling differs by backend, written once.

Everything else is plain SQLAlchemy Core; these exist because the portable spelling is wrong
(SQLAlchemy's ``//`` becomes ``FLOOR(a / b)`` on MySQL, and DECIMAL division there rounds
before FLOOR sees it) or missing (an upsert that does nothing on conflict, DDL of temporary
tables that does not end a MySQL transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Insert, Table, and_, text
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.types import Integer


class int_div(FunctionElement[int]):  # noqa: N801  (reads like the SQL function it is)
    """Exact integer division of two non-negative integer expressions (truncating)."""

    type = Integer()
    inherit_cache = True


@compiles(int_div)
def _int_div_default(element: int_div, compiler: Any, **kw: Any) -> str:
    # SQLite: '/' on two integers is integer division.
    left, right = list(element.clauses)
    return f"({compiler.process(left, **kw)}) / ({compiler.process(right, **kw)})"


@compiles(int_div, "mysql")
@compiles(int_div, "mariadb")
def _int_div_mysql(element: int_div, compiler: Any, **kw: Any) -> str:
    left, right = list(element.clauses)
    return (
        f"CAST({compiler.process(left, **kw)} AS SIGNED) "
        f"DIV CAST({compiler.process(right, **kw)} AS SIGNED)"
    )


def upsert(conn: Connection, table: Table, *, update_columns: Sequence[str]) -> Insert:
    """INSERT that updates ``update_columns`` when the primary key exists (nothing if empty)."""
    dialect = conn.dialect.name
    if dialect == "sqlite":
        stmt = sqlite.insert(table)
        keys = [c.name for c in table.primary_key.columns]
        if not update_columns:
            return stmt.on_conflict_do_nothing(index_elements=keys)
        return stmt.on_conflict_do_update(
            index_elements=keys, set_={name: stmt.excluded[name] for name in update_columns}
        )
    if dialect in ("mysql", "mariadb"):
        my_stmt = mysql.insert(table)
        if not update_columns:
            # Assigning a key column to itself is MySQL's portable "do nothing".
            first_key = next(iter(table.primary_key.columns)).name
            return my_stmt.on_duplicate_key_update({first_key: my_stmt.inserted[first_key]})
        return my_stmt.on_duplicate_key_update(
            {name: my_stmt.inserted[name] for name in update_columns}
        )
    raise NotImplementedError(f"no upsert for the {dialect} dialect")


def create_temporary_table(conn: Connection, table: Table) -> None:
    """Create ``table`` (declared with the TEMPORARY prefix) for this connection, unless it
    already has it.

    The one way wxhub makes a table outside the migrations: a plain ``CREATE TEMPORARY TABLE
    IF NOT EXISTS``, with no metadata look-up first, so a database user with no more than
    MySQL's CREATE TEMPORARY TABLES grant (and rights on the real tables) can load. On
    MySQL/MariaDB it does not end the caller's transaction, as other DDL would.
    """
    if "TEMPORARY" not in table._prefixes:  # no public accessor
        raise ValueError(f"{table.name} is not declared TEMPORARY")
    conn.execute(CreateTable(table, if_not_exists=True))


def drop_temporary_table(conn: Connection, table: Table) -> None:
    """Drop this connection's temporary ``table`` if it has it, inside the caller's
    transaction: ``DROP TEMPORARY TABLE`` on MySQL/MariaDB (a plain DROP TABLE would commit
    the transaction there), the ``temp`` schema's table on SQLite."""
    name = conn.dialect.identifier_preparer.quote(table.name)
    if conn.dialect.name == "sqlite":
        conn.execute(text(f"DROP TABLE IF EXISTS temp.{name}"))
    else:
        conn.execute(text(f"DROP TEMPORARY TABLE IF EXISTS {name}"))


def same_values(left: Sequence[ColumnElement[Any]], right: Sequence[ColumnElement[Any]]) -> Any:
    """True where every pair is equal, NULL counting as equal to NULL."""
    return and_(*(a.is_not_distinct_from(b) for a, b in zip(left, right, strict=True)))
