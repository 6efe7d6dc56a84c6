"""A MariaDB server of the tests' own, with TLS required, for the TLS and database-user tests.

One server for the session (it starts in about two seconds); each test makes its own
database on it. Without ``mariadbd``, ``mariadb-install-db`` or ``openssl`` the tests that
need it skip with the reason, except under ``CI=true``, where they fail: CI must run them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import IN_CI
from tests.mariadb_server import MariadbServer, missing_tools, running_mariadb


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariadbServer]:
    """A running MariaDB that requires TLS of TCP clients, with the test's own CA."""
    missing = missing_tools()
    if missing:
        reason = (
            f"{', '.join(missing)} not found: the TLS and database-user tests start a MariaDB "
            "of their own (Debian: apt-get install mariadb-server-core openssl)"
        )
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    with running_mariadb(tmp_path_factory.mktemp("mariadb")) as server:
        yield server


@pytest.fixture
def tls_database(tls_server: MariadbServer) -> Iterator[str]:
    """The name of a fresh database on the TLS server, dropped afterwards."""
    name = f"wxhub_tls_{uuid.uuid4().hex[:12]}"
    tls_server.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    yield name
    tls_server.execute(f"DROP DATABASE IF EXISTS {name}")
