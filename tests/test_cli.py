"""The `wxhub` command and the container's job entry point, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
from click.testing import Result
from sqlalchemy import Engine, create_engine, func, inspect, select, update
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ProgrammingError

from tests.conftest import DATA_DIR, noaa_line, throwaway_mysql_database, write_station
from tests.ingestion.test_ingest import snapshot
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.db.migrate import current_revision
from wxhub.db.schema import aggregation_pending, weather_observations, weather_yearly_stats
from wxhub.db.tls import DbTls

LINES = [noaa_line("20000101", 10, -20, 0), noaa_line("20000102", 20, -10, 5)]
SECRET = "s3cr3t-Pa$$w0rd"


def wxhub(
    *args: str, cwd: Path, env: dict[str, str] | None = None, module: str = "wxhub.cli"
) -> subprocess.CompletedProcess[str]:
    """Run the command in a subprocess, JSON logs unless the environment says otherwise."""
    full_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_URL", "DB_", "WXHUB_"))
    }
    full_env["WXHUB_LOG_FORMAT"] = "json"
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def json_lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def url_of(db_url: URL) -> str:
    return db_url.render_as_string(hide_password=False)


def count_rows(db_url: URL, table: object) -> int:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(table)).scalar_one()  # type: ignore[arg-type]
    engine.dispose()
    return int(count)


def test_run_on_the_embedded_default_creates_wxhub_db_in_the_working_directory(tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)

    result = wxhub("run", "in", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "wxhub.db").exists()
    summary = json_lines(result.stdout)[-1]
    assert summary["event"] == "summary"
    assert summary["records_ingested"] == 2
    assert isinstance(summary["records_ingested"], int)
    for key in ("started_at", "finished_at", "duration_s", "files_seen", "files_skipped"):
        assert key in summary
    db = URL.create("sqlite", database=str(tmp_path / "wxhub.db"))
    assert count_rows(db, weather_yearly_stats) == 1


def test_every_log_line_is_json_with_one_line_per_file_and_a_summary(tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)
    write_station(tmp_path / "in", "USC00000002", LINES)

    result = wxhub("ingest", "in", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    events = [line["event"] for line in json_lines(result.stdout)]
    assert events.count("file") == 2
    assert events[-1] == "summary"


def test_the_job_entry_point_is_the_same_job_as_wxhub_run(db_url: URL, tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)

    result = wxhub(
        str(tmp_path / "in"),
        cwd=tmp_path,
        env={"DATABASE_URL": url_of(db_url)},
        module="wxhub.ingestion",
    )

    assert result.returncode == 0, result.stderr
    assert count_rows(db_url, weather_observations) == 2
    assert count_rows(db_url, weather_yearly_stats) == 1


def test_database_url_option_overrides_the_environment(tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)
    chosen = tmp_path / "chosen.db"

    result = wxhub(
        "run",
        "in",
        "--database-url",
        f"sqlite:///{chosen}",
        cwd=tmp_path,
        env={"DATABASE_URL": f"sqlite:///{tmp_path / 'ignored.db'}"},
    )

    assert result.returncode == 0, result.stderr
    assert chosen.exists()
    assert not (tmp_path / "ignored.db").exists()


@pytest.mark.mysql
def test_db_parts_from_the_environment_make_a_mysql_connection(mysql_database: URL, tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)
    parts = {
        "DB_HOST": mysql_database.host or "",
        "DB_PORT": str(mysql_database.port or 3306),
        "DB_USER": mysql_database.username or "",
        "DB_NAME": mysql_database.database or "",
    }
    if mysql_database.password:
        parts["DB_PASSWORD"] = str(mysql_database.password)

    result = wxhub("run", "in", cwd=tmp_path, env=parts)

    assert result.returncode == 0, result.stderr
    assert count_rows(mysql_database, weather_observations) == 2


def test_an_unreachable_database_fails_with_one_line_and_never_shows_the_password(
    tmp_path: Path,
):
    write_station(tmp_path / "in", "USC00000001", LINES)
    env = {"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_USER": "wx", "DB_PASSWORD": SECRET}

    result = wxhub("run", "in", cwd=tmp_path, env=env)

    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert SECRET not in output
    errors = [line for line in json_lines(result.stdout) if line["level"] == "ERROR"]
    assert len(errors) == 1
    assert "127.0.0.1" in str(errors[0]["message"])
    assert "Traceback" not in output


def test_a_malformed_database_url_is_a_usage_error_that_hides_the_password(tmp_path: Path):
    result = wxhub("migrate", cwd=tmp_path, env={"DATABASE_URL": f"mysql://u:{SECRET}@h:port/x"})

    assert result.returncode == 2
    assert "DATABASE_URL" in result.stderr
    assert SECRET not in result.stdout + result.stderr


def test_a_missing_source_is_a_usage_error_naming_it(tmp_path: Path):
    result = wxhub("run", "no-such-folder", cwd=tmp_path)

    assert result.returncode == 2
    assert "no-such-folder" in result.stdout + result.stderr


def test_an_unreadable_file_makes_the_run_exit_1_after_loading_the_others(tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)
    (tmp_path / "in" / "USC00000002.txt.gz").write_bytes(b"not gzip")

    result = wxhub("run", "in", cwd=tmp_path)

    assert result.returncode == 1
    lines = json_lines(result.stdout)
    summary = next(line for line in lines if line["event"] == "summary")
    assert (summary["files_loaded"], summary["files_failed"]) == (1, 1)
    failures = [line for line in lines if line.get("event") == "failure"]
    assert "USC00000002.txt.gz" in str(failures[0]["message"])


def test_text_logs_state_the_counts_in_words(tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)

    result = wxhub("run", "in", cwd=tmp_path, env={"WXHUB_LOG_FORMAT": "text"})

    assert result.returncode == 0, result.stderr
    assert "records ingested: 2" in result.stderr
    assert "started" in result.stderr
    assert "finished" in result.stderr


def test_aggregate_full_and_migrate_run_on_their_own(tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)
    assert wxhub("migrate", cwd=tmp_path).returncode == 0
    assert wxhub("ingest", "in", cwd=tmp_path).returncode == 0

    result = wxhub("aggregate", "--full", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["station_years_aggregated"] == 1


def test_sources_can_come_from_the_environment(tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", LINES)

    result = wxhub("run", cwd=tmp_path, env={"WXHUB_SOURCES": str(tmp_path / "in")})

    assert result.returncode == 0, result.stderr
    assert json_lines(result.stdout)[-1]["files_loaded"] == 1


def test_help_lists_every_command(tmp_path: Path):
    result = wxhub("--help", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    for command in ("migrate", "ingest", "aggregate", "run"):
        assert command in result.stdout


@pytest.mark.parametrize("value", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3", ""])
def test_a_bad_shard_is_a_usage_error_naming_the_option(tmp_path: Path, value: str):
    write_station(tmp_path / "in", "USC00000001", LINES)

    result = wxhub("run", "in", "--shard", value, cwd=tmp_path)

    assert result.returncode == 2
    assert "--shard" in result.stderr
    assert not (tmp_path / "wxhub.db").exists()


def test_two_shards_run_one_after_the_other_give_the_same_tables_as_one_run(
    db_url: URL, tmp_path: Path
):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in sorted(os.listdir(DATA_DIR))[:6]:
        (folder / name).write_bytes((DATA_DIR / name).read_bytes())
    env = {"DATABASE_URL": url_of(db_url)}

    first = wxhub(str(folder), "--shard", "1/2", cwd=tmp_path, env=env, module="wxhub.ingestion")
    second = wxhub(str(folder), "--shard", "2/2", cwd=tmp_path, env=env, module="wxhub.ingestion")

    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    loaded = [json_lines(r.stdout)[-1]["files_loaded"] for r in (first, second)]
    assert loaded == [3, 3]  # CRC-32 of the six ids: shards 2, 1, 1, 2, 2, 1
    sharded = make_engine(db_url)
    if db_url.get_backend_name() == "sqlite":
        whole_url = URL.create("sqlite", database=str(tmp_path / "whole.db"))
        assert (
            wxhub("run", str(folder), "--database-url", url_of(whole_url), cwd=tmp_path).returncode
            == 0
        )
        whole = make_engine(whole_url)
        assert snapshot(sharded) == snapshot(whole)
    else:
        with throwaway_mysql_database() as whole_url:
            assert (
                wxhub(
                    "run", str(folder), "--database-url", url_of(whole_url), cwd=tmp_path
                ).returncode
                == 0
            )
            whole = make_engine(whole_url)
            assert snapshot(sharded) == snapshot(whole)
            whole.dispose()
    sharded.dispose()


# -- shards: a full recomputation of one shard, a shard that gets no file ------------------


def _shard(station_id: str, shards: int) -> int:
    """The shard README.md promises: CRC-32 of the id, modulo N, is K - 1."""
    return zlib.crc32(station_id.encode()) % shards + 1


SHARD_1_OF_2 = ("USC00000004", "USC00000005")
SHARD_2_OF_2 = ("USC00000001", "USC00000002")
TWO_YEARS = [noaa_line("20001231", 10, -20, 0), noaa_line("20010101", 20, -10, 5)]


def _yearly(db_url: URL) -> dict[tuple[str, int], tuple[object, ...]]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(weather_yearly_stats)).all()
    engine.dispose()
    return {(row.station_id, row.year): tuple(row) for row in rows}


def _pending(db_url: URL) -> set[tuple[str, int]]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(aggregation_pending.c.station_id, aggregation_pending.c.year))
        pending = {(station_id, year) for station_id, year in rows}
    engine.dispose()
    return pending


def _tamper(db_url: URL, station_id: str, year: int) -> None:
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(
            update(weather_yearly_stats)
            .where(
                weather_yearly_stats.c.station_id == station_id,
                weather_yearly_stats.c.year == year,
            )
            .values(avg_max_temp_c=Decimal("99.99"), max_temp_days=99)
        )
    engine.dispose()


def _events(result: Result, event: str) -> list[dict[str, object]]:
    return [line for line in json_lines(result.stdout) if line.get("event") == event]


def test_run_full_on_one_shard_recomputes_every_year_of_its_stations_and_no_other(
    db_url: URL, tmp_path: Path, wxhub_in_process: Callable[..., Result]
):
    assert [_shard(s, 2) for s in SHARD_1_OF_2 + SHARD_2_OF_2] == [1, 1, 2, 2]
    for station in SHARD_1_OF_2 + SHARD_2_OF_2:
        write_station(tmp_path / "in", station, TWO_YEARS)
    database = ("--database-url", url_of(db_url))
    assert wxhub_in_process("run", str(tmp_path / "in"), *database).exit_code == 0
    clean = _yearly(db_url)
    for station in (SHARD_1_OF_2[0], SHARD_2_OF_2[0]):
        _tamper(db_url, station, 2000)
    tampered = _yearly(db_url)

    result = wxhub_in_process("run", str(tmp_path / "in"), "--full", "--shard", "1/2", *database)

    assert result.exit_code == 0, result.output
    assert [e["files"] for e in _events(result, "shard")] == [2]
    (summary,) = _events(result, "summary")
    assert (summary["files_seen"], summary["files_skipped"], summary["files_loaded"]) == (2, 2, 0)
    # Every year of the shard's two stations, though nothing was queued.
    assert summary["station_years_aggregated"] == 4
    after = _yearly(db_url)
    assert {key: after[key] for key in after if key[0] in SHARD_1_OF_2} == {
        key: clean[key] for key in clean if key[0] in SHARD_1_OF_2
    }
    assert {key: after[key] for key in after if key[0] in SHARD_2_OF_2} == {
        key: tampered[key] for key in tampered if key[0] in SHARD_2_OF_2
    }
    assert after[(SHARD_2_OF_2[0], 2000)] != clean[(SHARD_2_OF_2[0], 2000)]


def test_a_shard_that_gets_no_file_exits_0_and_leaves_the_other_shard_s_queue_alone(
    db_url: URL, tmp_path: Path, wxhub_in_process: Callable[..., Result]
):
    station = SHARD_2_OF_2[0]
    write_station(tmp_path / "in", station, TWO_YEARS)
    database = ("--database-url", url_of(db_url))
    assert wxhub_in_process("migrate", *database).exit_code == 0
    loaded = wxhub_in_process("ingest", str(tmp_path / "in"), "--shard", "2/2", *database)
    assert loaded.exit_code == 0, loaded.output
    queued = {(station, 2000), (station, 2001)}
    assert _pending(db_url) == queued

    for extra in ((), ("--full",)):
        result = wxhub_in_process("run", str(tmp_path / "in"), "--shard", "1/2", *extra, *database)

        assert result.exit_code == 0, result.output
        assert [e["files"] for e in _events(result, "shard")] == [0]
        (summary,) = _events(result, "summary")
        assert summary["status"] == "succeeded"
        files = (summary["files_seen"], summary["files_loaded"], summary["files_failed"])
        assert files == (0, 0, 0)
        assert summary["station_years_aggregated"] == 0, extra
        assert _pending(db_url) == queued, extra
        assert _yearly(db_url) == {}

    aggregated = wxhub_in_process("aggregate", *database)
    assert aggregated.exit_code == 0, aggregated.output
    assert set(_yearly(db_url)) == queued


# -- shards side by side: one migrate before them, none in them ---------------------------


def test_a_shard_ingest_on_an_unmigrated_database_exits_2_naming_migrate_and_writes_nothing(
    db_url: URL, tmp_path: Path, wxhub_in_process: Callable[..., Result]
):
    write_station(tmp_path / "in", SHARD_1_OF_2[0], TWO_YEARS)

    result = wxhub_in_process(
        "ingest", str(tmp_path / "in"), "--shard", "1/2", "--database-url", url_of(db_url)
    )

    assert result.exit_code == 2, result.output
    (error,) = _events(result, "error")
    assert "run `wxhub migrate` first" in str(error["message"])
    assert "an empty database" in str(error["message"])
    engine = make_engine(db_url)
    assert current_revision(engine) is None
    assert inspect(engine).get_table_names() == []
    engine.dispose()


def test_a_shard_ingest_neither_migrates_nor_aggregates(
    db_url: URL,
    tmp_path: Path,
    wxhub_in_process: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
):
    for station in SHARD_1_OF_2 + SHARD_2_OF_2:
        write_station(tmp_path / "in", station, TWO_YEARS)
    database = ("--database-url", url_of(db_url))
    assert wxhub_in_process("migrate", *database).exit_code == 0
    upgrades: list[object] = []
    upgrade = migrate.upgrade

    def counted_upgrade(engine: Engine) -> tuple[str | None, str]:
        upgrades.append(engine)
        return upgrade(engine)

    monkeypatch.setattr(migrate, "upgrade", counted_upgrade)

    results = [
        wxhub_in_process("ingest", str(tmp_path / "in"), "--shard", f"{k}/2", *database)
        for k in (1, 2)
    ]

    assert [r.exit_code for r in results] == [0, 0], [r.output for r in results]
    assert upgrades == []
    assert _yearly(db_url) == {}
    every_year = {(s, y) for s in SHARD_1_OF_2 + SHARD_2_OF_2 for y in (2000, 2001)}
    assert _pending(db_url) == every_year
    assert wxhub_in_process("aggregate", *database).exit_code == 0
    assert set(_yearly(db_url)) == every_year
    assert len(upgrades) == 1, "the aggregate's own check, at the newest revision already"


# -- the database's own rules: TLS, and users that may not migrate --------------------------


def test_a_user_without_ddl_rights_stops_an_ingest_at_once_and_a_shard_asks_for_migrate(
    db_url: URL,
    tmp_path: Path,
    wxhub_in_process: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
):
    # The job's database user (wxhub.db.users) on a schema behind its image: MySQL refuses the
    # DDL. An ingest that migrates says to run the migration task; a shard never tries, and
    # says to run `wxhub migrate` first. Both are the operator's to fix: exit 2, no retrying.
    write_station(tmp_path / "in", SHARD_1_OF_2[0], TWO_YEARS)
    database = ("--database-url", url_of(db_url))
    from alembic import command  # noqa: PLC0415

    def refused(*args: object, **kwargs: object) -> None:
        denied = pymysql.err.OperationalError(
            1142, "CREATE command denied to user 'wxhub_job'@'%' for table 'job_runs'"
        )
        raise ProgrammingError("CREATE TABLE job_runs (...)", {}, denied)

    monkeypatch.setattr(command, "upgrade", refused)

    whole = wxhub_in_process("ingest", str(tmp_path / "in"), *database)
    shard = wxhub_in_process("ingest", str(tmp_path / "in"), "--shard", "1/2", *database)

    assert [whole.exit_code, shard.exit_code] == [2, 2], [whole.output, shard.output]
    (error,) = _events(whole, "error")
    assert "may not make" in str(error["message"])
    assert "run `wxhub migrate` as the master user first" in str(error["message"])
    assert "the migration task" in str(error["message"])
    (error,) = _events(shard, "error")
    assert "run `wxhub migrate` first" in str(error["message"])
    assert current_revision(make_engine(db_url)) is None


def test_migrate_and_a_shard_connect_with_the_tls_setting(
    tmp_path: Path, wxhub_in_process: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
):
    # What a task on AWS gets: an RDS host in DB_HOST and WXHUB_DB_TLS. The engine is made with
    # the setting; here it then opens a local SQLite file, as there is no RDS to reach.
    from wxhub import cli  # noqa: PLC0415

    local = make_url(f"sqlite:///{tmp_path / 'wxhub.db'}")
    seen: list[tuple[str | None, DbTls | None]] = []

    def recording(url: URL, *, tls: DbTls | None = None, **kwargs: Any) -> Engine:
        seen.append((url.host, tls))
        return make_engine(local, **kwargs)

    monkeypatch.setattr(cli, "make_engine", recording)
    write_station(tmp_path / "in", SHARD_1_OF_2[0], TWO_YEARS)
    env = {
        "DB_HOST": "wxhub-dev.abcdefghijkl.eu-west-1.rds.amazonaws.com",
        "DB_USER": "wxhub_job",
        "DB_PASSWORD": SECRET,
        "DB_NAME": "wxhub",
        "WXHUB_DB_TLS": "require",
    }

    migrated = wxhub_in_process("migrate", env=env)
    loaded = wxhub_in_process("ingest", str(tmp_path / "in"), "--shard", "1/2", env=env)

    assert [migrated.exit_code, loaded.exit_code] == [0, 0], [migrated.output, loaded.output]
    assert [(host, tls.mode if tls else None) for host, tls in seen] == [
        ("wxhub-dev.abcdefghijkl.eu-west-1.rds.amazonaws.com", "require"),
        ("wxhub-dev.abcdefghijkl.eu-west-1.rds.amazonaws.com", "require"),
    ]
    assert SECRET not in migrated.output + loaded.output
