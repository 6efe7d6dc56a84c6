"""The API reads from a read-only copy when one is set; the job and migrations never touch it.

On MariaDB the "replica" is the same database reached as a second user with SELECT only, as
an Aurora reader endpoint is the same data behind a host where writes are refused. The writer
is reached through a loopback proxy the tests cut after the load: an answer that still comes
can only have come through the reader.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from flask.testing import FlaskClient
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from tests.api.conftest import STATIONS as FIXTURE_STATIONS
from tests.conftest import mysql_server_url, noaa_line, write_station
from tests.tcp_proxy import TcpProxy, proxy_to
from wxhub.api.app import create_app
from wxhub.api.db import KEEP_CONNECTION_S
from wxhub.config import load_settings

STATIONS = ("USC00000001", "USC00000002")
# Every data endpoint, and the CSV form of the two lists that have one.
DATA_PATHS = (
    f"/api/weather?station_id={STATIONS[0]}",
    f"/api/weather?station_id={STATIONS[0]}&format=csv",
    f"/api/weather/stats?station_id={STATIONS[0]}",
    f"/api/weather/stats?station_id={STATIONS[0]}&format=csv",
    "/api/stations",
    f"/api/stations/{STATIONS[1]}",
)
FIXTURE_STATION = FIXTURE_STATIONS[0]  # of the `client` fixture (tests/api/conftest.py)
# The server's "you may not" on a table.
TABLE_ACCESS_DENIED = 1142


def as_text(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def write_input(folder: Path, station: str, year: int) -> None:
    write_station(
        folder,
        station,
        [noaa_line(f"{year}{month:02d}01", 100 + month, -20 - month, month) for month in (1, 2)],
    )


@dataclass(frozen=True)
class Replica:
    """A loaded database, its writer (root, through a proxy the test may cut) and its
    reader (a user with SELECT on it and nothing else)."""

    writer: URL
    reader: URL
    reader_user: str
    proxy: TcpProxy

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "DATABASE_URL": as_text(self.writer),
            "DATABASE_READ_URL": as_text(self.reader),
            "WXHUB_DB_TLS": "off",
            "WXHUB_DB_RETRY_S": "0",
            **extra,
        }


def _as_root(*statements: str) -> None:
    engine = create_engine(mysql_server_url())
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    engine.dispose()


@pytest.fixture
def replica(
    mysql_database: URL, tmp_path: Path, wxhub_in_process: Callable[..., Result]
) -> Iterator[Replica]:
    """Two stations loaded by the job through the writer, then a read-only user made."""
    folder = tmp_path / "in"
    for number, station in enumerate(STATIONS):
        write_input(folder, station, 2000 + number)
    loaded = wxhub_in_process("run", str(folder), env={"DATABASE_URL": as_text(mysql_database)})
    assert loaded.exit_code == 0, loaded.output

    suffix = uuid.uuid4().hex[:8]
    user, password = f"ro_{suffix}", f"ro-{suffix}-Cc3"
    database = mysql_database.database
    _as_root(
        f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'",
        f"GRANT SELECT ON {database}.* TO '{user}'@'%'",
    )
    try:
        with proxy_to(mysql_database) as proxy:
            yield Replica(
                writer=proxy.url_for(mysql_database),
                reader=mysql_database.set(username=user, password=password),
                reader_user=user,
                proxy=proxy,
            )
    finally:
        _as_root(f"DROP USER IF EXISTS '{user}'@'%'")


def answers(client: FlaskClient) -> dict[str, tuple[int, str, str | None]]:
    """Status, body and ETag of every data endpoint."""
    found = {}
    for path in DATA_PATHS:
        response = client.get(path)
        found[path] = (
            response.status_code,
            response.get_data(as_text=True),
            response.headers.get("ETag"),
        )
    return found


def engine_of(client: FlaskClient) -> Engine:
    return client.application.extensions["wxhub.engine"]  # type: ignore[no-any-return]


# --- the API --------------------------------------------------------------------------------------


@pytest.mark.mysql
def test_every_data_endpoint_answers_from_the_reader_with_the_writer_cut_off(
    replica: Replica,
) -> None:
    on_writer = create_app(load_settings({**replica.env(), "DATABASE_READ_URL": ""}))
    expected = answers(on_writer.test_client())
    assert all(status == 200 for status, _, _ in expected.values()), expected
    assert STATIONS[0] in expected[DATA_PATHS[0]][1]  # the data is there to be read

    on_writer.extensions["wxhub.connections"].drop()  # given back before its path goes
    replica.proxy.cut()
    client = create_app(load_settings(replica.env())).test_client()

    assert engine_of(client).url.username == replica.reader_user
    assert client.get("/readyz").status_code == 200
    assert answers(client) == expected
    # and the writer really is out of reach: the API on it alone is not ready
    assert on_writer.test_client().get("/readyz").status_code == 503


@pytest.mark.mysql
def test_db_read_host_reads_from_that_host_with_the_writer_s_other_parts(
    replica: Replica, mysql_database: URL
) -> None:
    # The reader's user on a writer host that does not even resolve: only DB_READ_HOST works.
    writer = replica.reader.set(host="writer.invalid")
    env = {"DATABASE_URL": as_text(writer), "DB_READ_HOST": mysql_database.host or "127.0.0.1"}

    client = create_app(load_settings({**env, "WXHUB_DB_TLS": "off"})).test_client()

    assert engine_of(client).url.host == mysql_database.host
    assert client.get("/readyz").status_code == 200
    response = client.get(DATA_PATHS[0])
    assert response.status_code == 200
    assert response.get_json()["data"]


@pytest.mark.mysql
def test_readiness_checks_the_reader_the_api_uses_not_the_writer(
    replica: Replica, mysql_database: URL
) -> None:
    with proxy_to(mysql_database) as reader_proxy:
        reader = reader_proxy.url_for(replica.reader)
        writer = mysql_database  # reachable all along
        settings = load_settings(
            {**replica.env(), "DATABASE_URL": as_text(writer), "DATABASE_READ_URL": as_text(reader)}
        )
        client = create_app(settings).test_client()
        assert client.get("/readyz").status_code == 200

        reader_proxy.cut()

        assert client.get("/readyz").status_code == 503
        assert client.get(DATA_PATHS[0]).status_code == 503


@pytest.mark.mysql
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE data_version SET version = version + 1",
        f"INSERT INTO weather_observations (station_id, obs_date) VALUES ('{STATIONS[0]}', "
        "'1990-01-01')",
        "DELETE FROM stations",
    ],
)
def test_a_write_through_the_api_s_connection_is_refused_by_the_server(
    replica: Replica, statement: str
) -> None:
    client = create_app(load_settings(replica.env())).test_client()

    with engine_of(client).connect() as conn, pytest.raises(DBAPIError) as excinfo:
        conn.execute(text(statement))

    assert excinfo.value.orig is not None
    assert excinfo.value.orig.args[0] == TABLE_ACCESS_DENIED


# --- the job and migrations -----------------------------------------------------------------------


@pytest.fixture(params=["read-only user", "unreachable"])
def job_reader(request: pytest.FixtureRequest, replica: Replica) -> URL:
    """A read URL the job could not have written through (SELECT only), and one it could not
    even have connected to (a proxy that is cut)."""
    if request.param == "read-only user":
        return replica.reader
    dead = TcpProxy(("127.0.0.1", 1))
    url = dead.url_for(replica.reader)
    dead.cut()
    return url


@pytest.mark.mysql
def test_the_job_and_migrate_write_through_the_writer_with_a_reader_set(
    replica: Replica,
    job_reader: URL,
    mysql_database: URL,
    tmp_path: Path,
    wxhub_in_process: Callable[..., Result],
) -> None:
    folder = tmp_path / "more"
    write_input(folder, "USC00000009", 2010)
    env = {**replica.env(), "DATABASE_URL": as_text(mysql_database)}
    env["DATABASE_READ_URL"] = as_text(job_reader)

    migrated = wxhub_in_process("migrate", env=env)
    ran = wxhub_in_process("run", str(folder), env=env)

    assert migrated.exit_code == 0, migrated.output
    assert ran.exit_code == 0, ran.output
    summary = json.loads(ran.stdout.splitlines()[-1])
    assert summary["records_inserted"] == 2
    engine = create_engine(mysql_database)
    with engine.connect() as conn:
        count = conn.execute(
            text("SELECT COUNT(*) FROM weather_yearly_stats WHERE station_id = 'USC00000009'")
        ).scalar_one()
    engine.dispose()
    assert count == 1  # aggregated too


# --- SQLite ---------------------------------------------------------------------------------------


def test_on_sqlite_database_read_url_names_the_file_the_api_reads(
    tmp_path: Path, wxhub_in_process: Callable[..., Result]
) -> None:
    copy = tmp_path / "copy.db"
    folder = tmp_path / "in"
    write_input(folder, STATIONS[0], 2000)
    loaded = wxhub_in_process("run", str(folder), env={"DATABASE_URL": f"sqlite:///{copy}"})
    assert loaded.exit_code == 0, loaded.output
    # A writer the API could not open: a file in a folder that does not exist.
    unusable = tmp_path / "no" / "such" / "folder" / "wxhub.db"

    settings = load_settings(
        {"DATABASE_URL": f"sqlite:///{unusable}", "DATABASE_READ_URL": f"sqlite:///{copy}"}
    )
    client = create_app(settings).test_client()

    assert client.get("/readyz").status_code == 200
    response = client.get(DATA_PATHS[0])
    assert response.status_code == 200
    assert len(response.get_json()["data"]) == 2


# --- kept connections end, so that a reader auto scaling adds gets work --------------------------


def test_a_thread_s_kept_connection_is_replaced_by_a_new_one_once_it_is_old(
    client: FlaskClient,
) -> None:
    connections = client.application.extensions["wxhub.connections"]
    assert connections.max_age_s == KEEP_CONNECTION_S
    assert client.get(DATA_PATHS[0].replace(STATIONS[0], FIXTURE_STATION)).status_code == 200
    kept = connections.get()
    first = kept.connection.dbapi_connection
    first_id = server_connection_id(kept)
    assert connections.get() is kept  # young: kept

    connections.max_age_s = 0.0  # every connection is now old
    assert client.get(DATA_PATHS[0].replace(STATIONS[0], FIXTURE_STATION)).status_code == 200

    fresh = connections.get()
    assert fresh is not kept
    assert fresh.connection.dbapi_connection is not first
    if first_id is not None:  # MySQL: a new server connection, not the pool's old one again
        assert server_connection_id(fresh) != first_id


def server_connection_id(conn: Connection) -> int | None:
    if conn.dialect.name == "sqlite":
        return None
    return int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one())
