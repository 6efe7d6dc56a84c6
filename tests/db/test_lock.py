"""The job lock on MariaDB/MySQL: a server-wide named lock, scoped to one database.

(Holding, waiting for and releasing the lock, and a killed run leaving none behind, are
tested with whole runs in tests/test_faults.py.)
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from tests.conftest import throwaway_mysql_database
from wxhub.db.engine import make_engine
from wxhub.db.lock import LockBusy, job_lock

pytestmark = pytest.mark.mysql


@pytest.fixture
def two_databases() -> Iterator[tuple[Engine, Engine]]:
    """Engines on two databases of the one MySQL server."""
    with throwaway_mysql_database() as url_a, throwaway_mysql_database() as url_b:
        a, b = make_engine(url_a), make_engine(url_b)
        yield a, b
        a.dispose()
        b.dispose()


def test_two_databases_on_one_server_do_not_block_each_other(
    two_databases: tuple[Engine, Engine],
):
    a, b = two_databases
    another_run_on_a = make_engine(a.url)
    try:
        with job_lock(a):
            # At once (no --wait): LockBusy here would mean database A's run blocks B's.
            with job_lock(b):
                pass
            # The lock is really held meanwhile: a second run on database A is turned away.
            with pytest.raises(LockBusy), job_lock(another_run_on_a):
                pass  # pragma: no cover
    finally:
        another_run_on_a.dispose()
