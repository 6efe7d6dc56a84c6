"""Least privilege: ``wxhub migrate`` keeps a job user and an API user, and each can do its
work and nothing more.

Each runs twice: on the tests' own MariaDB (tests/db/conftest.py, TLS required), and on the
test server of the other database tests (``WXHUB_TEST_MYSQL_URL``; MySQL 8.4 in GitHub
Actions, the engine RDS runs). Users are server-wide and that server is shared: every test
names its users uniquely and drops them afterwards.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError

from tests.conftest import mysql_server_url, noaa_line, write_station
from tests.ghcn_files import stations_file, stations_line
from tests.mariadb_server import MariadbServer
from wxhub.api.app import create_app
from wxhub.config import ConfigError, load_settings
from wxhub.db.engine import make_engine
from wxhub.db.tls import DbTls
from wxhub.db.users import API_TABLES, DbUser, ensure_users, users_from_env

LEDGER_TABLES = (
    "job_runs",
    "ingested_files",
    "ingested_objects",
    "ingestion_rejects",
    "aggregation_pending",
)


@dataclass(frozen=True)
class Users:
    job: str
    api: str
    job_password: str
    api_password: str

    def env(self) -> dict[str, str]:
        return {
            "WXHUB_DB_JOB_USER": self.job,
            "WXHUB_DB_JOB_PASSWORD": self.job_password,
            "WXHUB_DB_API_USER": self.api,
            "WXHUB_DB_API_PASSWORD": self.api_password,
        }


@dataclass(frozen=True)
class Server:
    """A server the user tests run on, with root's way in and the TLS its clients use."""

    name: str
    root_url: URL
    tls_env: dict[str, str]
    tls: DbTls
    admin: Callable[[], Engine]

    def url(self, user: str, password: str | None, database: str) -> URL:
        return self.root_url.set(username=user, password=password, database=database)

    def execute(self, *statements: str) -> None:
        """Run ``statements`` as root."""
        engine = self.admin()
        with engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
        engine.dispose()

    def grants(self, user: str) -> list[str]:
        engine = self.admin()
        with engine.connect() as conn:
            rows = conn.execute(text(f"SHOW GRANTS FOR '{user}'@'%'")).scalars().all()
        engine.dispose()
        return sorted(str(row) for row in rows)


@pytest.fixture(params=["own MariaDB", "test server"])
def server(request: pytest.FixtureRequest) -> Server:
    """The tests' own MariaDB (TLS required, verified), and the test server of every other
    database test (WXHUB_TEST_MYSQL_URL: MySQL 8.4 in GitHub Actions, the engine RDS runs),
    without TLS: the grants must hold on both."""
    if request.param == "own MariaDB":
        own: MariadbServer = request.getfixturevalue("tls_server")
        ca = str(own.certificates.ca)
        return Server(
            request.param,
            own.url(),
            {"WXHUB_DB_TLS": "verify", "WXHUB_DB_CA_FILE": ca},
            DbTls("verify", ca),
            lambda: make_engine(own.url(), tls=DbTls("verify", ca)),
        )
    root = mysql_server_url()
    return Server(
        request.param,
        root,
        {"WXHUB_DB_TLS": "off"},
        DbTls("off"),
        lambda: make_engine(root, tls=DbTls("off")),
    )


@pytest.fixture
def database(server: Server) -> Iterator[str]:
    """A fresh database on ``server``, dropped afterwards."""
    name = f"wxhub_users_{uuid.uuid4().hex[:12]}"
    server.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
    yield name
    server.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture
def users(request: pytest.FixtureRequest) -> Iterator[Users]:
    """Two users of unique names, dropped afterwards from the server the test used: users
    are server-wide, and the test server is shared."""
    suffix = uuid.uuid4().hex[:8]
    made = Users(f"job_{suffix}", f"api_{suffix}", f"jobpw-{suffix}-Aa1", f"apipw-{suffix}-Bb2")
    yield made
    if "server" in request.fixturenames:
        server: Server = request.getfixturevalue("server")
        server.execute(*(f"DROP USER IF EXISTS '{u}'@'%'" for u in (made.job, made.api)))


def master_env(server: Server, database: str) -> dict[str, str]:
    url = server.root_url.set(database=database)
    return {
        "DATABASE_URL": url.render_as_string(hide_password=False),
        **server.tls_env,
        "WXHUB_DB_RETRY_S": "0",
    }


def user_env(server: Server, database: str, user: str, password: str) -> dict[str, str]:
    url = server.url(user, password, database)
    return {
        **master_env(server, database),
        "DATABASE_URL": url.render_as_string(hide_password=False),
    }


@pytest.fixture
def migrated(
    server: Server,
    database: str,
    users: Users,
    wxhub_in_process: Callable[..., Result],
) -> Users:
    """The database migrated by the master user, with both users made."""
    result = wxhub_in_process("migrate", env={**master_env(server, database), **users.env()})
    assert result.exit_code == 0, result.output
    return users


@pytest.fixture
def connect(server: Server, database: str) -> Iterator[Callable[[str, str], Engine]]:
    """An engine logged in as a user, over the server's TLS, disposed of afterwards."""
    engines: list[Engine] = []

    def engine_for(user: str, password: str) -> Engine:
        engine = make_engine(server.url(user, password, database), tls=server.tls)
        engines.append(engine)
        return engine

    yield engine_for
    for engine in engines:
        engine.dispose()


# The server's "you may not": 1142 on a table, 1044 on a database, 1227 a global privilege.
PRIVILEGE_ERRORS = (1044, 1142, 1227)


def refused(engine: Engine, statement: str) -> bool:
    """Whether the server refuses ``statement`` to this engine's user for want of privilege
    (any other error, a syntax error or a failed login, is raised: it would prove nothing)."""
    try:
        with engine.begin() as conn:
            conn.execute(text(statement))
    except DBAPIError as exc:
        code = exc.orig.args[0] if exc.orig is not None and exc.orig.args else None
        if code not in PRIVILEGE_ERRORS:
            raise
        return True
    return False


# --- the API user ---------------------------------------------------------------------------------


def test_the_api_user_reads_what_the_api_serves(
    migrated: Users,
    connect: Callable[[str, str], Engine],
    server: Server,
    database: str,
) -> None:
    api = connect(migrated.api, migrated.api_password)
    for table in (*API_TABLES, "alembic_version"):
        assert not refused(api, f"SELECT * FROM {table} LIMIT 1")

    client = create_app(
        load_settings(user_env(server, database, migrated.api, migrated.api_password))
    ).test_client()
    assert client.get("/readyz").status_code == 200
    assert client.get("/api/weather?station_id=USC00110072").status_code == 200
    assert client.get("/api/weather/stats?station_id=USC00110072").status_code == 200
    assert client.get("/api/stations").status_code == 200


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO weather_observations (station_id, obs_date) VALUES ('X', '2020-01-01')",
        "UPDATE data_version SET version = version + 1",
        "DELETE FROM stations",
        "DROP TABLE weather_observations",
        "CREATE TEMPORARY TABLE t (a INT)",
    ],
)
def test_the_api_user_cannot_write(
    migrated: Users, connect: Callable[[str, str], Engine], statement: str
) -> None:
    assert refused(connect(migrated.api, migrated.api_password), statement)


@pytest.mark.parametrize("table", LEDGER_TABLES)
def test_the_api_user_cannot_read_the_ledger(
    migrated: Users, connect: Callable[[str, str], Engine], table: str
) -> None:
    assert refused(connect(migrated.api, migrated.api_password), f"SELECT * FROM {table}")


# --- the job user ---------------------------------------------------------------------------------


def test_the_job_user_runs_the_job_with_load_data_local(
    server: Server,
    database: str,
    migrated: Users,
    wxhub_in_process: Callable[..., Result],
    tmp_path: Path,
) -> None:
    folder = tmp_path / "in"
    write_station(folder, "USC00110072", [noaa_line("19850101", -22, -128, 94)])
    env = user_env(server, database, migrated.job, migrated.job_password)

    first = wxhub_in_process("run", str(folder), env=env)
    # A second file of the same station goes through the staging (temporary) table.
    write_station(folder, "USC00110072", [noaa_line("19850101", -21, -128, 94)])
    second = wxhub_in_process("run", str(folder), env=env)

    for result in (first, second):
        assert result.exit_code == 0, result.output
        assert "LOAD DATA LOCAL INFILE is refused" not in result.output
    summary = json.loads(second.stdout.splitlines()[-1])
    assert summary["records_updated"] == 1


def test_the_job_user_loads_the_station_list_and_recomputes_every_year(
    server: Server,
    database: str,
    migrated: Users,
    wxhub_in_process: Callable[..., Result],
    tmp_path: Path,
) -> None:
    station_list = tmp_path / "ghcnd-stations.txt"
    station_list.write_bytes(
        stations_file(
            [stations_line("USC00110072", 40.0, -88.0, 200.0, "IL", "SOMEWHERE", "", "", "")]
        )
    )
    write_station(tmp_path / "in", "USC00110072", [noaa_line("19850101", -22, -128, 94)])
    env = user_env(server, database, migrated.job, migrated.job_password)

    loaded = wxhub_in_process("stations", str(station_list), env=env)
    run = wxhub_in_process("run", str(tmp_path / "in"), "--state", "IL", env=env)
    full = wxhub_in_process("aggregate", "--full", env=env)

    for result in (loaded, run, full):
        assert result.exit_code == 0, result.output


def test_a_job_user_on_a_schema_behind_the_code_says_to_run_the_migration_task(
    server: Server,
    database: str,
    migrated: Users,
    wxhub_in_process: Callable[..., Result],
    tmp_path: Path,
) -> None:
    server.execute(f"UPDATE {database}.alembic_version SET version_num = '0005'")
    write_station(tmp_path / "in", "USC00110072", [noaa_line("19850101", -22, -128, 94)])
    env = user_env(server, database, migrated.job, migrated.job_password)

    result = wxhub_in_process("run", str(tmp_path / "in"), env=env)

    assert result.exit_code == 2
    errors = [json.loads(line) for line in result.stdout.splitlines() if '"ERROR"' in line]
    (error,) = errors
    assert "the schema is at revision 0005 and this wxhub needs" in error["message"]
    assert f"the database user {migrated.job} may not make" in error["message"]
    assert "run `wxhub migrate` as the master user first" in error["message"]


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE USER intruder IDENTIFIED BY 'x'",
        "DROP TABLE weather_observations",
        "CREATE TABLE t (a INT)",
        "ALTER TABLE stations ADD COLUMN x INT",
        "GRANT SELECT ON job_runs TO CURRENT_USER",
        "SELECT * FROM mysql.user",
    ],
)
def test_the_job_user_cannot_manage_users_or_change_the_schema(
    migrated: Users, connect: Callable[[str, str], Engine], statement: str
) -> None:
    assert refused(connect(migrated.job, migrated.job_password), statement)


# --- migrate keeps them ---------------------------------------------------------------------------


def test_migrating_twice_changes_no_grant(
    server: Server,
    database: str,
    migrated: Users,
    wxhub_in_process: Callable[..., Result],
) -> None:
    before = {user: server.grants(user) for user in (migrated.job, migrated.api)}

    again = wxhub_in_process("migrate", env={**master_env(server, database), **migrated.env()})

    assert again.exit_code == 0, again.output
    assert {user: server.grants(user) for user in (migrated.job, migrated.api)} == before


def test_a_new_password_takes_effect_at_the_next_migration(
    server: Server,
    database: str,
    migrated: Users,
    wxhub_in_process: Callable[..., Result],
    connect: Callable[[str, str], Engine],
) -> None:
    new_password = f"rotated-{uuid.uuid4().hex[:8]}"
    rotated = {**migrated.env(), "WXHUB_DB_API_PASSWORD": new_password}

    result = wxhub_in_process("migrate", env={**master_env(server, database), **rotated})

    assert result.exit_code == 0
    assert not refused(connect(migrated.api, new_password), "SELECT 1")
    with pytest.raises(DBAPIError, match="Access denied"):
        connect(migrated.api, migrated.api_password).connect()
    assert new_password not in result.output


def test_a_privilege_granted_by_hand_is_revoked(
    server: Server,
    database: str,
    migrated: Users,
    wxhub_in_process: Callable[..., Result],
    connect: Callable[[str, str], Engine],
) -> None:
    server.execute(
        f"GRANT INSERT ON {database}.weather_observations TO '{migrated.api}'@'%'",
        f"GRANT SELECT ON {database}.job_runs TO '{migrated.api}'@'%'",
        f"GRANT CREATE, DROP ON {database}.* TO '{migrated.job}'@'%'",
    )

    result = wxhub_in_process("migrate", env={**master_env(server, database), **migrated.env()})

    assert result.exit_code == 0, result.output
    api = connect(migrated.api, migrated.api_password)
    assert refused(api, "SELECT * FROM job_runs")
    assert refused(
        api, "INSERT INTO weather_observations (station_id, obs_date) VALUES ('X', '2020-01-01')"
    )
    assert refused(connect(migrated.job, migrated.job_password), "CREATE TABLE t (a INT)")


def test_the_passwords_are_never_logged(
    server: Server,
    database: str,
    users: Users,
    wxhub_in_process: Callable[..., Result],
) -> None:
    result = wxhub_in_process("migrate", env={**master_env(server, database), **users.env()})

    assert result.exit_code == 0
    assert users.job in result.output  # said what it did
    assert users.job_password not in result.output
    assert users.api_password not in result.output


# --- the settings ---------------------------------------------------------------------------------


def test_without_the_variables_migrate_keeps_no_user() -> None:
    assert users_from_env({}, "admin") == ()
    assert load_settings({}).db_users == ()


def test_both_users_come_from_their_own_variables() -> None:
    env = {
        "WXHUB_DB_JOB_USER": "wxhub_job",
        "WXHUB_DB_JOB_PASSWORD": "a",
        "WXHUB_DB_API_USER": "wxhub_api",
        "WXHUB_DB_API_PASSWORD": "b",
    }

    settings = load_settings(env)

    assert settings.db_users == (DbUser("job", "wxhub_job", "a"), DbUser("api", "wxhub_api", "b"))
    assert {"a", "b"} <= set(settings.secrets_to_redact())
    assert "'a'" not in repr(settings.db_users)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"WXHUB_DB_API_USER": "wxhub_api"}, "WXHUB_DB_API_USER and WXHUB_DB_API_PASSWORD must"),
        ({"WXHUB_DB_JOB_USER": "no-dash", "WXHUB_DB_JOB_PASSWORD": "x"}, "is not a user name"),
        ({"WXHUB_DB_JOB_USER": "admin", "WXHUB_DB_JOB_PASSWORD": "x"}, "logs in as (DB_USER)"),
        (
            {
                "WXHUB_DB_JOB_USER": "same",
                "WXHUB_DB_JOB_PASSWORD": "x",
                "WXHUB_DB_API_USER": "same",
                "WXHUB_DB_API_PASSWORD": "y",
            },
            "is also the job user",
        ),
    ],
)
def test_a_bad_user_setting_is_a_config_error_naming_it(env: dict[str, str], message: str) -> None:
    url = "mysql+pymysql://admin@db.example:3306/wxhub"

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings({"DATABASE_URL": url, **env})


def test_users_are_a_no_op_on_sqlite(tmp_path: Path) -> None:
    engine = make_engine(load_settings({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}).database_url)

    ensure_users(engine, (DbUser("job", "wxhub_job", "pw"),))  # nothing to do, nothing raised
    engine.dispose()
