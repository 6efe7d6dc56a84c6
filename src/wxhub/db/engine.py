"""Engine creation: the one place that knows how each backend must be configured."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError, OperationalError

from wxhub.db.tls import DbTls, tls_failure

# Same semantics on every MySQL-compatible server whatever its configuration: strict types
# (a bad value is an error, never a silent zero) and UTC timestamps.
_MYSQL_INIT = (
    "SET SESSION sql_mode='STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,"
    "ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone='+00:00'"
)
MYSQL_CONNECT_TIMEOUT_S = 10
SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(
    url: URL, *, writer: bool = False, tls: DbTls | None = None, **kwargs: Any
) -> Engine:
    """Create an engine for ``url`` with the settings wxhub relies on.

    ``tls`` (MySQL only; the API and the job pass ``Settings.db_tls``): how connections use
    TLS, see :mod:`wxhub.db.tls`; a TLS failure then raises its one-line
    :class:`~wxhub.db.tls.DatabaseTlsError` instead of a connection error to retry. Without
    it the URL and the driver's defaults decide (tests, tools).

    ``writer`` (the job's commands): on SQLite, every transaction takes the write lock when
    it begins, so several job processes on one file (shards side by side) wait their turn.
    Without it, transactions begin deferred, as readers (the API) and in-process callers
    that hold two connections at once need.
    """
    backend = url.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(url, writer=writer, **kwargs)
    if backend in ("mysql", "mariadb"):
        connect_args = {
            # LOAD DATA LOCAL INFILE is the fast bulk path; the loader falls back to batched
            # INSERTs when the server refuses it.
            "local_infile": True,
            "connect_timeout": MYSQL_CONNECT_TIMEOUT_S,
            "init_command": _MYSQL_INIT,
            **(tls.connect_args() if tls is not None else {}),
            **kwargs.pop("connect_args", {}),
        }
        # READ COMMITTED: under InnoDB's default REPEATABLE READ, every INSERT ... SELECT
        # share-locks each row it reads (the aggregation would lock all 1.7M observations and
        # take twice as long). Each wxhub transaction is one file or one aggregation step, and
        # one job runs at a time, so statement-level snapshots are all it needs.
        kwargs.setdefault("isolation_level", "READ COMMITTED")
        engine = create_engine(
            url, connect_args=connect_args, pool_pre_ping=True, pool_recycle=3600, **kwargs
        )
        if tls is not None:
            _explain_tls_failures(engine, tls, url)
        return engine
    return create_engine(url, **kwargs)


def _explain_tls_failures(engine: Engine, tls: DbTls, url: URL) -> None:
    """Raise a TLS failure as one line to act on, not as a connection failure to retry."""

    @event.listens_for(engine, "handle_error")
    def _on_error(context: Any) -> None:
        failure = tls_failure(context.original_exception, tls, url)
        if failure is not None:
            raise failure from context.original_exception


def _sqlite_engine(url: URL, *, writer: bool, **kwargs: Any) -> Engine:
    engine = create_engine(url, **kwargs)
    begin = "BEGIN IMMEDIATE" if writer else "BEGIN"
    # The job's staging table holds a whole file: a by-year file is millions of station-days,
    # so its temporary tables live in a file (behind the page cache), not in the process's
    # memory. Readers make no temporary tables worth a file.
    temp_store = "FILE" if writer else "MEMORY"

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide where transactions begin (the documented
        # recipe), so a file's rows and its ledger entry really commit together.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        if url.database and url.database != ":memory:":
            # WAL survives a killed process with every committed transaction intact;
            # synchronous=NORMAL only risks the last commits on power loss, not on a crash.
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA temp_store = {temp_store}")
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE for writers: a deferred transaction that reads, then writes after another
        # process committed, fails at once with "database is locked" (its snapshot is stale,
        # so SQLite cannot wait); an immediate one waits its turn (busy_timeout) instead.
        conn.exec_driver_sql(begin)

    return engine


def is_connection_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the database could not be reached (refused, timed out, dropped).

    SQLAlchemy wraps a failed connect without a statement; a connection lost in the middle
    of one is marked invalidated. A refused statement (a constraint, a syntax error) is not
    a connection failure, even when the driver calls it an OperationalError.
    """
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError) and exc.statement is None
