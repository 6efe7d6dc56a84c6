"""The API's database access: one engine per process, one connection per request.

The connection is opened on first use in a request and returned to the pool when the
request ends, so the data-version check and the query share it.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, select

from wxhub.api.reads import Statements, run
from wxhub.db.schema import data_version

_STATEMENTS = Statements()


def engine() -> Engine:
    return current_app.extensions["wxhub.engine"]  # type: ignore[no-any-return]


def connection() -> Connection:
    """This request's connection."""
    conn: Connection | None = g.get("db_connection")
    if conn is None:
        conn = g.db_connection = engine().connect()
        # One transaction for the request: its data-version read and its page read the same
        # snapshot (reads.run uses the DBAPI connection, which would not begin one itself).
        conn.begin()
    return conn


def current_data_version() -> int:
    """Bumped by every write of the job: what ETags and caches are keyed on."""
    version = g.get("data_version")
    if version is None:
        conn = connection()
        compiled = _STATEMENTS.get(conn, "version", lambda: select(data_version.c.version))
        rows = run(conn, compiled, {})
        version = g.data_version = int(rows[0][0] or 0) if rows else 0
    return int(version)


def register(app: Flask) -> None:
    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        conn: Connection | None = g.pop("db_connection", None)
        if conn is not None:
            conn.close()
