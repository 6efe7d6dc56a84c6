"""The API's database access: one engine per process, one connection per request.

The connection is opened on first use in a request and returned to the pool when the
request ends, so the data-version check and the query share it.
"""

from __future__ import annotations

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, select

from wxhub.db.schema import data_version


def engine() -> Engine:
    return current_app.extensions["wxhub.engine"]  # type: ignore[no-any-return]


def connection() -> Connection:
    """This request's connection."""
    conn: Connection | None = g.get("db_connection")
    if conn is None:
        conn = g.db_connection = engine().connect()
    return conn


def current_data_version() -> int:
    """Bumped by every write of the job: what ETags and caches are keyed on."""
    version = g.get("data_version")
    if version is None:
        version = connection().execute(select(data_version.c.version)).scalar() or 0
        g.data_version = version
    return int(version)


def register(app: Flask) -> None:
    @app.teardown_request
    def _close(_exc: BaseException | None) -> None:
        conn: Connection | None = g.pop("db_connection", None)
        if conn is not None:
            conn.close()
