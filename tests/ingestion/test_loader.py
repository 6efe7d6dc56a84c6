"""The MySQL/MariaDB loader's bulk path: LOAD DATA LOCAL INFILE, or batched INSERTs when the
server refuses it. MySQL only: SQLite has one bulk path (json_each), tested everywhere else.

The refusal is made per connection, never with ``SET GLOBAL local_infile=0``, which would
change the shared server under every other test running at the time: a client that does not
offer the LOCAL INFILE capability (PyMySQL's ``local_infile=False``) has its ``LOAD DATA
LOCAL`` refused by the server itself, with the error a server set to ``local_infile=0`` gives
(MariaDB 10.11: 4166, "the MariaDB server or client has disabled the local infile capability").
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from sqlalchemy.engine import URL

from tests.conftest import DATA_DIR, noaa_line, throwaway_mysql_database, write_station
from tests.ghcn_files import csv_line, stations_line, write_csv
from tests.ingestion.test_ingest import snapshot
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.db.schema import ingested_files, job_runs, metadata, stations
from wxhub.ingestion import main as ingestion_main
from wxhub.ingestion.loader import MysqlLoader, make_loader
from wxhub.ingestion.sources import resolve, resolve_sources
from wxhub.job import EXIT_OK, run_job

pytestmark = pytest.mark.mysql

LOADER_LOGGER = "wxhub.ingestion.loader"
REAL_STATIONS = ("USC00110072", "USC00110187")  # about 10,000 days each
CORRECTED = "USC00000001"
NEW_LATER = "USC00000002"
REFUSED = {"local_infile": False}  # the client does not offer LOCAL INFILE: the server refuses


def _write_two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """The first run: two real station files and one small one with missing values and a
    rejected line (every file a new station: bulk copy straight into the table). The second:
    a correction of the small one (staging, then upsert: inserted, updated, unchanged) and a
    station first seen then."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    for station in REAL_STATIONS:
        shutil.copy(DATA_DIR / f"{station}.txt", first / f"{station}.txt")
    write_station(
        first,
        CORRECTED,
        [
            noaa_line("20000101", 10, -20, 0),
            noaa_line("20000102", -9999, -9999, -9999),
            "20000103\tnot-a-number\t1\t1",  # rejected
            noaa_line("20001231", -155, -300, 123),
        ],
    )
    write_station(
        second,
        CORRECTED,
        [
            noaa_line("20000101", 10, -20, 0),  # unchanged
            noaa_line("20000102", 55, -9999, 0),  # updated: values now known
            noaa_line("20001231", -155, -301, 123),  # updated
            noaa_line("20010101", 20, 10, 0),  # inserted
        ],
    )
    write_station(second, NEW_LATER, [noaa_line("19990615", 300, 150, 1234)])
    return first, second


def _load(engine: Engine, *folders: Path) -> None:
    for folder in folders:
        assert run_job(engine, "run", sources=resolve_sources([str(folder)]), workers=0) == EXIT_OK


def _counts(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """What each run and each file reported: inserted, updated, unchanged, rejected."""
    run_columns = [
        c for c in job_runs.c if c.name not in ("id", "started_at", "finished_at", "command")
    ]
    file_columns = [
        c for c in ingested_files.c if c.name not in ("id", "run_id", "ingested_at", "source_uri")
    ]
    with engine.connect() as conn:
        runs = conn.execute(select(*run_columns).order_by(job_runs.c.id)).all()
        files = conn.execute(select(*file_columns).order_by(ingested_files.c.id)).all()
    return {"runs": [tuple(r) for r in runs], "files": [tuple(r) for r in files]}


def _sent(engine: Engine) -> list[str]:
    """Every statement the engine sends from now on."""
    sent: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    return sent


def _load_data(statements: list[str]) -> int:
    return sum(s.lstrip().upper().startswith("LOAD DATA LOCAL INFILE") for s in statements)


def _row_inserts(statements: list[str], table: str) -> int:
    """INSERTs of rows given as parameters (one batch per file), as opposed to the
    INSERT ... SELECT from the staging table."""
    return sum(
        s.split()[:3] == ["INSERT", "INTO", table] and "SELECT" not in s.split() for s in statements
    )


def _migrated(url: URL, **kwargs: Any) -> Engine:
    engine = make_engine(url, **kwargs)
    migrate.upgrade(engine)
    return engine


@pytest.fixture
def refused(mysql_database: URL) -> Iterator[Engine]:
    """An engine whose every connection the server refuses LOAD DATA LOCAL INFILE."""
    engine = _migrated(mysql_database, connect_args=REFUSED)
    yield engine
    engine.dispose()


@pytest.fixture
def allowed() -> Iterator[Engine]:
    """An engine as wxhub makes it, on another database of the same server."""
    with throwaway_mysql_database() as url:
        engine = _migrated(url)
        yield engine
        engine.dispose()


def _loader_warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LOADER_LOGGER]


def test_a_refused_local_infile_loads_by_batched_inserts_with_the_same_result(
    refused: Engine, allowed: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    first, second = _write_two_runs(tmp_path)
    sent = _sent(refused)
    caplog.set_level(logging.WARNING, logger=LOADER_LOGGER)

    _load(refused, first, second)
    _load(allowed, first, second)

    warnings = _loader_warnings(caplog)
    assert [r.levelno for r in warnings] == [logging.WARNING] * 2  # one per run, not per file
    assert all("LOAD DATA LOCAL INFILE is refused" in r.getMessage() for r in warnings)
    # The probes (one per run) are the only LOAD DATA; each file goes in by one batched
    # INSERT: straight into the table for the 4 new stations, through staging for the
    # correction.
    assert _load_data(sent) == 2
    assert _row_inserts(sent, "weather_observations") == 4
    assert _row_inserts(sent, "wxhub_staging_observations") == 1
    assert snapshot(refused) == snapshot(allowed)
    assert _counts(refused) == _counts(allowed)
    with refused.connect() as conn:
        counted = conn.execute(
            select(
                ingested_files.c.records_inserted,
                ingested_files.c.records_updated,
                ingested_files.c.records_unchanged,
                ingested_files.c.records_rejected,
            ).order_by(ingested_files.c.id)
        ).all()
    assert tuple(counted[-2]) == (1, 2, 1, 0)  # inserted, updated, unchanged, rejected


def test_one_refused_run_of_many_files_warns_exactly_once(
    refused: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    first, _ = _write_two_runs(tmp_path)
    caplog.set_level(logging.WARNING, logger=LOADER_LOGGER)

    _load(refused, first)

    warnings = _loader_warnings(caplog)
    assert [r.levelno for r in warnings] == [logging.WARNING]
    assert "batched INSERTs" in warnings[0].getMessage()


def test_a_server_that_allows_local_infile_gets_every_file_by_load_data(
    allowed: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    first, second = _write_two_runs(tmp_path)
    with allowed.connect() as conn:
        loader = make_loader(conn)
        assert isinstance(loader, MysqlLoader)
        assert loader.local_infile
    sent = _sent(allowed)
    caplog.set_level(logging.WARNING, logger=LOADER_LOGGER)

    _load(allowed, first, second)

    # One probe per run, then one LOAD DATA per file loaded (3 + 2); no INSERT of rows.
    assert _load_data(sent) == 2 + 5
    assert _row_inserts(sent, "weather_observations") == 0
    assert _row_inserts(sent, "wxhub_staging_observations") == 0
    assert _loader_warnings(caplog) == []


@contextmanager
def _user_with_only_data_rights(database: URL) -> Iterator[URL]:
    """A user of ``database`` who may read and write the rows of wxhub's tables and create
    temporary tables, and nothing else (no CREATE, DROP or ALTER, no right on any other name):
    what a locked-down production loader gets."""
    admin = make_engine(database)
    name = f"wxhub_u_{uuid.uuid4().hex[:10]}"
    password = uuid.uuid4().hex
    db = database.database
    with admin.begin() as conn:
        for host in ("%", "localhost"):
            user = f"'{name}'@'{host}'"
            conn.execute(text(f"CREATE USER {user} IDENTIFIED BY '{password}'"))
            conn.execute(text(f"GRANT CREATE TEMPORARY TABLES ON {db}.* TO {user}"))
            conn.execute(text(f"GRANT SELECT ON {db}.alembic_version TO {user}"))
            for table in metadata.sorted_tables:
                rights = "SELECT, INSERT, UPDATE, DELETE"
                conn.execute(text(f"GRANT {rights} ON {db}.{table.name} TO {user}"))
    try:
        yield database.set(username=name, password=password)
    finally:
        with admin.begin() as conn:
            for host in ("%", "localhost"):
                conn.execute(text(f"DROP USER IF EXISTS '{name}'@'{host}'"))
        admin.dispose()


def test_a_user_with_only_the_create_temporary_tables_grant_loads_big_and_small_files(
    mysql_database: URL, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(ingestion_main, "MAX_FILE_BYTES", 2048)  # the by-year file is streamed
    monkeypatch.setattr(ingestion_main, "CHUNK_BYTES", 1024)
    _migrated(mysql_database).dispose()  # migrations run as the schema's owner
    folder = tmp_path / "in"
    folder.mkdir()
    write_station(folder, CORRECTED, [noaa_line("20000101", 10, -20, 0)])
    lines = [
        csv_line(station, f"2014{month:02d}{day:02d}", element, day)
        for station in (CORRECTED, NEW_LATER)
        for month in (1, 2)
        for day in range(1, 29)
        for element in ("TMAX", "PRCP")
    ]
    write_csv(folder, "2014", lines)
    (folder / "ghcnd-stations.txt").write_text(
        stations_line(CORRECTED, 41.2, -88.1, 200.0, "IL", "ALEDO") + "\n"
    )  # NOAA's station list: its loader stages through a temporary table too

    def run() -> int:
        found = resolve([str(folder)])
        return run_job(engine, "run", sources=found.files, station_metadata=found.station_metadata)

    with _user_with_only_data_rights(mysql_database) as url:
        engine = make_engine(url)
        try:
            assert run() == EXIT_OK
            # Again with one value changed: the by-year file is hashed, staged and compared.
            lines[0] = csv_line(CORRECTED, "20140101", "TMAX", 99)
            write_csv(folder, "2014", lines)
            assert run() == EXIT_OK
            with engine.connect() as conn:
                runs = conn.execute(select(job_runs).order_by(job_runs.c.id)).all()
        finally:
            engine.dispose()

    # The by-year file first (by name), then the wx file of a station it gave: staged too.
    assert [(r.files_loaded, r.records_updated) for r in runs] == [(2, 0), (1, 1)]
    owner = make_engine(mysql_database)
    with owner.connect() as conn:
        assert conn.execute(select(stations.c.name)).scalars().all() == ["ALEDO"]
    owner.dispose()
