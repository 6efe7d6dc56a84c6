"""The API's database access: one engine per process, one connection per serving thread.

Each thread keeps its connection across the requests it serves (a pool checkout, a liveness
ping and a reset per request cost as much as a page's own query). Reads run in autocommit,
each its own snapshot, on both backends: no transaction stays open on a kept connection (it
would hold MySQL's metadata locks against a migration, or SQLite's WAL snapshot), and none
needs a BEGIN or a ROLLBACK. The data version is read first, so an answer is never older
than its ETag: a request that straddles the job's commit may show the new data under the
old version's ETag, which no later request can ask for (they all read the new version).

A kept connection the server has dropped (a restart, a failover, an idle timeout) fails the
request's first read, the data version: that read is tried once more on a fresh connection,
as the pool's pre-ping would have done, so a database that comes back is served at once.

A kept connection is also replaced, between two requests, once it is older than
:data:`KEEP_CONNECTION_S`: behind an Aurora reader endpoint each new connection may land on
another reader, and a reader that auto scaling has just added gets no work from connections
that never end. One new connection per thread every few minutes costs nothing measurable.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError

from wxhub.api.reads import Compiled, Row, Statements, run, scalars
from wxhub.db.schema import data_version

_STATEMENTS = Statements()
# How long a thread keeps its connection before it opens a new one (seconds).
KEEP_CONNECTION_S = 300.0


class ThreadConnections:
    """One connection per thread, opened on first use, replaced once it is invalid or older
    than ``max_age_s``."""

    def __init__(self, engine: Engine, *, max_age_s: float = KEEP_CONNECTION_S) -> None:
        self.engine = engine
        self.max_age_s = max_age_s
        self._local = threading.local()

    def get(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None and time.monotonic() - self._local.opened > self.max_age_s:
            # Closed for good, not given back to the pool: the pool would hand the same
            # server connection (the same reader) straight back.
            self._retire(conn)
            conn = None
        if conn is None or conn.closed or conn.invalidated:
            conn = self.engine.connect()
            self._local.opened = time.monotonic()
            if conn.dialect.name != "sqlite":
                # Whatever engine the app was given (tests pass the job's). SQLite's
                # connections are in autocommit already (db/engine.py): reads.run never
                # begins the transaction the engine would open with BEGIN.
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            self._local.conn = conn
        return conn

    def _retire(self, conn: Connection) -> None:
        self._local.conn = None
        with contextlib.suppress(DBAPIError):  # a connection already dead is as good as gone
            if not conn.closed:
                conn.invalidate()
        conn.close()

    def drop(self) -> None:
        """Forget this thread's connection (closing it gives it back to the pool, or
        discards it when it is invalid)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            conn.close()


def engine() -> Engine:
    return current_app.extensions["wxhub.engine"]  # type: ignore[no-any-return]


def _connections() -> ThreadConnections:
    return current_app.extensions["wxhub.connections"]  # type: ignore[no-any-return]


def connection() -> Connection:
    """This request's connection."""
    conn: Connection | None = g.get("db_connection")
    if conn is None:
        conn = g.db_connection = _connections().get()
    return conn


def current_data_version() -> int:
    """Bumped by every write of the job: what ETags and caches are keyed on."""
    version = g.get("data_version")
    if version is None:
        rows = _read_first(lambda conn: run(conn, _version_statement(conn), {}))
        version = g.data_version = int(rows[0][0] or 0) if rows else 0
    return int(version)


def read_version_with(params: Mapping[str, Any], *parts: Compiled) -> tuple[Any, ...]:
    """The first value of each of ``parts``, read in the same statement as the data version
    when this request has not read the version yet (one round trip instead of two or more on
    MySQL, and one snapshot: the values are those of that version)."""
    if g.get("data_version") is not None:
        return tuple(run(connection(), scalars(*parts), params)[0])
    rows = _read_first(lambda conn: run(conn, scalars(_version_statement(conn), *parts), params))
    g.data_version = int(rows[0][0] or 0)
    return tuple(rows[0][1:])


def _read_first(read: Callable[[Connection], list[Row]]) -> list[Row]:
    """A request's first read, tried once more on a fresh connection when the kept one
    turns out to be dead (see the module's docstring)."""
    try:
        return read(connection())
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        _end_request()
        return read(connection())


def _version_statement(conn: Connection) -> Compiled:
    # MAX: one value whatever the table holds, so it also reads as a scalar subquery.
    return _STATEMENTS.get(conn, "version", lambda: select(func.max(data_version.c.version)))


def _end_request() -> None:
    conn: Connection | None = g.pop("db_connection", None)
    if conn is None:
        return
    try:
        if conn.in_transaction():
            conn.rollback()
    except DBAPIError:
        _connections().drop()
        return
    if conn.invalidated or conn.closed:
        _connections().drop()


def register(app: Flask) -> None:
    app.extensions["wxhub.connections"] = ThreadConnections(app.extensions["wxhub.engine"])

    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        _end_request()
