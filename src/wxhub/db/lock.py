"""One writer at a time: the nightly schedule and a manual run must not both load.

On MySQL the lock is the server's named lock (``GET_LOCK``), held by a connection of its own
for the whole run; on SQLite it is an exclusive ``flock`` on a file beside the database.
Both are released by the operating system or the server when the process dies, so a run
killed with SIGKILL never leaves a lock behind for the next night to trip over.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

POLL_S = 1.0
WAIT_LOG_EVERY_S = 60.0


class LockBusy(RuntimeError):  # noqa: N818  (reads as the condition it names)
    """Another run holds the lock (and the caller did not ask to wait)."""


@contextlib.contextmanager
def job_lock(engine: Engine, *, name: str = "job", wait: bool = False) -> Iterator[None]:
    """Hold the database's job lock ``name`` for the duration, or raise :class:`LockBusy`;
    with ``wait``, wait for it instead."""
    if engine.dialect.name == "sqlite":
        with _file_lock(engine, name, wait=wait):
            yield
    else:
        with _server_lock(engine, name, wait=wait):
            yield


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


@contextlib.contextmanager
def _server_lock(engine: Engine, name: str, *, wait: bool) -> Iterator[None]:
    # GET_LOCK names are server-wide: scope them to this database (at most 64 characters).
    database = engine.url.database or ""
    digest = hashlib.sha256(database.encode()).hexdigest()[:16]
    lock_name = f"wxhub.{name}.{digest}"
    with engine.connect() as conn:
        for _ in _waiting(f"the {name} lock held by another run"):
            got = conn.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": lock_name}).scalar()
            conn.commit()
            if got == 1:
                break
            if not wait:
                raise LockBusy(_busy_message(name, engine.url.render_as_string(hide_password=True)))
        try:
            yield
        finally:
            with contextlib.suppress(Exception):  # a lost connection has released it already
                conn.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": lock_name})
                conn.commit()


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
