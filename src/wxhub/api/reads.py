"""The API's hot read path: each query shape compiled once per dialect, run on the driver.

A page of the API is one to three small indexed reads. Building a SQLAlchemy statement,
computing its cache key and setting up a result object for each of them cost more than the
reads themselves (a profile of a distinct station page: about half of the request). So each
shape of query (one per endpoint, filter combination and count of station ids) is written
once with SQLAlchemy Core, compiled once per dialect, and from then on executed as its SQL
text on the request's pooled DBAPI connection, rows returned as the driver's tuples. The CSV
exports run the same statements' text too (``stream``), so a request's filters become SQL in
one place whatever the answer's format.

Nothing else changes: the connection still comes from the request's SQLAlchemy connection
(pool, pre-ping, timeouts, the transaction that keeps a request's reads on one snapshot),
it is returned (and rolled back) at the end of the request, engine event listeners still see
each statement (``before_cursor_execute``), and a
driver error is raised as SQLAlchemy's own exception (``OperationalError`` and so on, with
the connection invalidated on a disconnect), which the error handlers turn into a 503.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.exc import DBAPIError

Row = Sequence[Any]


@dataclass(frozen=True)
class Compiled:
    """One statement's SQL for one dialect and the order its parameters go in."""

    sql: str
    names: tuple[str, ...] | None  # positional drivers: the names in order; else None
    fixed: Mapping[str, Any]  # the values written into the statement (``limit(1)``)

    def arguments(self, params: Mapping[str, Any]) -> Sequence[Any] | Mapping[str, Any]:
        values = {**self.fixed, **params} if self.fixed else params
        if self.names is None:
            return values
        return tuple(values[name] for name in self.names)


class Statements:
    """Statements compiled once per (shape, dialect): ``build`` runs on first use only."""

    def __init__(self) -> None:
        self._compiled: dict[tuple[str, Hashable], Compiled] = {}
        self._lock = threading.Lock()

    def get(self, conn: Connection, shape: Hashable, build: Callable[[], Select[Any]]) -> Compiled:
        dialect = conn.dialect
        key = (dialect.name, shape)
        compiled = self._compiled.get(key)
        if compiled is None:
            statement = build().compile(dialect=dialect)
            names = tuple(statement.positiontup) if statement.positional else None  # type: ignore[arg-type]
            fixed = {k: v for k, v in statement.params.items() if v is not None}
            compiled = Compiled(str(statement), names, fixed)
            with self._lock:
                self._compiled[key] = compiled
        return compiled


_SCALARS: dict[tuple[tuple[str, tuple[str, ...] | None], ...], Compiled] = {}


def scalars(*parts: Compiled) -> Compiled:
    """One statement whose row holds the first value of each part: ``SELECT (a), (b)``.

    On MySQL every statement is a round trip to the server; two scalar reads a request needs
    anyway (the data version and a count) cost one this way. The parts' parameters keep
    their order (positional drivers) or their names (named ones), so they must not share a
    name with different values."""
    # The names too: on a positional driver two parts' text can be the same ``?`` for
    # different parameters.
    key = tuple((part.sql, part.names) for part in parts)
    combined = _SCALARS.get(key)
    if combined is None:
        positional = all(part.names is not None for part in parts)
        combined = Compiled(
            "SELECT " + ", ".join(f"({part.sql})" for part in parts),
            tuple(name for part in parts for name in part.names or ()) if positional else None,
            {name: value for part in parts for name, value in part.fixed.items()},
        )
        _SCALARS[key] = combined
    return combined


def run(conn: Connection, compiled: Compiled, params: Mapping[str, Any]) -> list[Row]:
    """Every row of ``compiled`` with ``params``, as the driver's tuples."""
    proxied = conn.connection
    try:
        cursor = proxied.cursor()
        arguments = compiled.arguments(params)
        if conn._has_events or conn.engine._has_events:
            # Listeners (statement counts in tests, tracing) see these statements too.
            conn.dispatch.before_cursor_execute(conn, cursor, compiled.sql, arguments, None, False)
        try:
            cursor.execute(compiled.sql, arguments)
            return list(cursor.fetchall())
        finally:
            cursor.close()
    except conn.dialect.loaded_dbapi.Error as exc:
        disconnect = conn.dialect.is_disconnect(exc, proxied.dbapi_connection, None)
        if disconnect:
            conn.invalidate(exc)
        raise DBAPIError.instance(
            compiled.sql,
            dict(params),
            exc,
            conn.dialect.loaded_dbapi.Error,
            connection_invalidated=disconnect,
            dialect=conn.dialect,
        ) from exc


def stream(
    conn: Connection, compiled: Compiled, params: Mapping[str, Any], batch_rows: int
) -> Iterator[Sequence[Row]]:
    """Every row of ``compiled`` with ``params``, ``batch_rows`` at a time.

    For the CSV exports, which may read the whole table: unlike :func:`run`, the rows are
    never all in memory. The SQL text is the same compiled one, but it goes through
    SQLAlchemy's streaming, which knows each driver's server-side cursor (MySQL's unbuffered
    cursor class; SQLite's cursor is lazy already) and closes it with the result.
    """
    streaming = conn.execution_options(stream_results=True, yield_per=batch_rows)
    result = streaming.exec_driver_sql(compiled.sql, compiled.arguments(params))
    yield from result.partitions()


def date_param(conn: Connection, value: dt.date | str) -> dt.date | str:
    """A date as the driver takes it: SQLite stores ISO text (SQLAlchemy's Date type does
    the same conversion), MySQL's drivers take the date. A key read back from SQLite is
    already that text."""
    if isinstance(value, str) or conn.dialect.name != "sqlite":
        return value
    return value.isoformat()


def iso(value: dt.date | str | None) -> str | None:
    """A date column's value as ISO text: SQLite's driver returns the stored text."""
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def number(value: Any) -> float | None:
    """A DECIMAL or REAL column as a float (a Decimal of at most 8 digits prints as the same
    digits in JSON as its float)."""
    return None if value is None else float(value)


def tenths(value: int | None) -> float | None:
    return None if value is None else value / 10
