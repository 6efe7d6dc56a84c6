"""One writer at a time: the nightly schedule and a manual run must not both load.

On MySQL the lock is the server's named lock (``GET_LOCK``), held by a connection of its own
for the whole run; on SQLite it is an exclusive ``flock`` on a file beside the database.
Both are released by the operating system or the server when the process dies, so a run
killed with SIGKILL never leaves a lock behind for the next night to trip over.

A server lock dies with its connection, and a database restart (an RDS fail-over) drops
every connection while the run is retrying its step. So the run never trusts that it still
holds the lock: before any other connection of its engine commits, the lock's connection is
asked whether it still holds it. If it does not, the lock is taken again on a new connection
before the commit goes through; if another run took it meanwhile, the commit is abandoned
(rolled back) and this run stops with :class:`LockLost`, leaving the work to the other run.
The same check keeps the idle lock connection alive past the server's ``wait_timeout``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger(__name__)

POLL_S = 1.0
WAIT_LOG_EVERY_S = 60.0


class LockBusy(RuntimeError):  # noqa: N818  (reads as the condition it names)
    """Another run holds the lock (and the caller did not ask to wait)."""


class LockLost(RuntimeError):  # noqa: N818  (reads as the condition it names)
    """The lock went with its connection and another run holds it now: this run must stop
    writing (the write that found out was rolled back)."""


class HeldLock:
    """What the holder of a job lock can do with it besides letting it go."""

    def stand_down(self) -> None:
        """Stop guarding commits: after :class:`LockLost`, only the run's own record of how it
        ended is written (the file lock cannot be lost, so this does nothing there)."""


@contextlib.contextmanager
def job_lock(engine: Engine, *, name: str = "job", wait: bool = False) -> Iterator[HeldLock]:
    """Hold the database's job lock ``name`` for the duration, or raise :class:`LockBusy`;
    with ``wait``, wait for it instead."""
    if engine.dialect.name == "sqlite":
        with _file_lock(engine, name, wait=wait):
            yield HeldLock()
    else:
        with _server_lock(engine, name, wait=wait) as held:
            yield held


def _waiting(what: str) -> Iterator[None]:
    """Ticks every POLL_S seconds, saying now and then that the run is still waiting."""
    started = last_said = time.monotonic()
    while True:
        yield
        if time.monotonic() - last_said >= WAIT_LOG_EVERY_S:
            last_said = time.monotonic()
            waited = last_said - started
            log.info("still waiting for %s (%.0f s)", what, waited, extra={"event": "lock_wait"})
        time.sleep(POLL_S)


def server_lock_name(engine: Engine, name: str = "job") -> str:
    """The ``GET_LOCK`` name of lock ``name``: server-wide, so scoped to this database (a
    digest keeps it within MySQL's 64 characters)."""
    digest = hashlib.sha256((engine.url.database or "").encode()).hexdigest()[:16]
    return f"wxhub.{name}.{digest}"


@contextlib.contextmanager
def _server_lock(engine: Engine, name: str, *, wait: bool) -> Iterator[HeldLock]:
    lock = _ServerLock(engine, name)
    lock.acquire(wait=wait)
    event.listen(engine, "commit", lock.before_commit)
    try:
        yield lock
    finally:
        lock.stand_down()
        lock.release()


class _ServerLock(HeldLock):
    """A ``GET_LOCK`` held by a connection of its own, checked before every commit."""

    def __init__(self, engine: Engine, name: str) -> None:
        self.engine = engine
        self.name = name
        self.lock_name = server_lock_name(engine, name)
        self.conn: Connection | None = None
        self._checking = False
        self._guarding = True

    def stand_down(self) -> None:
        if self._guarding:
            self._guarding = False
            event.remove(self.engine, "commit", self.before_commit)

    def acquire(self, *, wait: bool) -> None:
        conn = self.engine.connect()
        try:
            for _ in _waiting(f"the {self.name} lock held by another run"):
                if self._get_lock(conn):
                    break
                if not wait:
                    where = self.engine.url.render_as_string(hide_password=True)
                    raise LockBusy(_busy_message(self.name, where))
        except BaseException:
            conn.close()
            raise
        self.conn = conn

    def release(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):  # a lost connection has released it already
            conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": self.lock_name})
            conn.commit()
        with contextlib.suppress(Exception):
            conn.close()

    def _get_lock(self, conn: Connection) -> bool:
        self._checking = True  # the lock's own commits are not checked against itself
        try:
            got = conn.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": self.lock_name})
            held = got.scalar() == 1
            conn.commit()
        finally:
            self._checking = False
        return held

    def before_commit(self, conn: Connection) -> None:
        """The engine's ``commit`` event: let the commit through only while the lock is ours."""
        if self._checking or conn is self.conn:
            return
        try:
            self.check()
        except BaseException:
            # Nothing of this transaction may reach the database: the commit is not sent,
            # and the open transaction is rolled back so a later commit cannot carry it.
            with contextlib.suppress(Exception):
                conn.connection.dbapi_connection.rollback()  # type: ignore[union-attr]
            raise

    def check(self) -> None:
        """Still ours, or taken again now; :class:`LockLost` if another run holds it."""
        if self.conn is not None and self._still_held(self.conn):
            return
        lost, self.conn = self.conn, None
        if lost is not None:
            with contextlib.suppress(Exception):
                lost.invalidate()
        conn = self.engine.connect()  # a refused connection propagates: the step is retried
        try:
            if not self._get_lock(conn):
                raise LockLost(
                    f"the {self.name} lock was lost with its database connection and another "
                    "run holds it now; this run stops here and leaves the work to that one "
                    "(nothing after its last commit was kept)"
                )
        except BaseException:
            conn.close()
            raise
        self.conn = conn
        log.warning(
            "the %s lock was lost with its database connection; taken again",
            self.name,
            extra={"event": "lock_retaken", "lock": self.name},
        )

    def _still_held(self, conn: Connection) -> bool:
        self._checking = True
        try:
            owner = conn.execute(
                text("SELECT IS_USED_LOCK(:name) = CONNECTION_ID()"), {"name": self.lock_name}
            ).scalar()
            conn.commit()
        except DBAPIError:
            return False  # the lock's connection is gone, and the lock with it
        finally:
            self._checking = False
        return bool(owner)


@contextlib.contextmanager
def _file_lock(engine: Engine, name: str, *, wait: bool) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield  # a private in-memory database: no other process can write to it
        return
    try:
        import fcntl  # noqa: PLC0415  (POSIX only)
    except ImportError:  # pragma: no cover  (Windows: no flock; one process per laptop)
        yield
        return
    path = Path(f"{database}.{name}.lock")
    with path.open("a") as handle:
        for _ in _waiting(f"the {name} lock held by another run"):
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise LockBusy(_busy_message(name, database)) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")  # who holds it, for a curious operator
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _busy_message(name: str, where: str) -> str:
    return (
        f"another wxhub run holds the {name} lock on {where}; this one does nothing "
        "(--wait waits for it instead)"
    )
