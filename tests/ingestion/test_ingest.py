"""Ingestion semantics, each against a real SQLite file and a real MariaDB database."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import BinaryIO

import pytest
from sqlalchemy import Engine, Table, func, select
from sqlalchemy.engine import URL
from sqlalchemy.exc import SQLAlchemyError

from tests.conftest import DATA_DIR, noaa_line, write_station
from wxhub.db.engine import make_engine
from wxhub.db.schema import (
    aggregation_pending,
    ingested_files,
    ingestion_rejects,
    job_runs,
    station_summary,
    weather_observations,
    weather_yearly_stats,
)
from wxhub.ingestion import ledger
from wxhub.ingestion.loader import Loader, loader_class
from wxhub.ingestion.rows import ParsedFile
from wxhub.ingestion.sources import LocalFile, resolve_sources
from wxhub.job import EXIT_FAILED, EXIT_OK, run_job

STATION = "USC00000001"
ORIGINAL = [
    noaa_line("20000101", 10, -20, 0),
    noaa_line("20000102", 20, -10, 5),
    noaa_line("20000103", -9999, -30, -9999),
]


def copy_real_files(folder: Path, count: int) -> Path:
    folder.mkdir(parents=True)
    for name in sorted(os.listdir(DATA_DIR))[:count]:
        shutil.copy(DATA_DIR / name, folder / name)
    return folder


def run(engine: Engine, *sources: Path, force: bool = False) -> int:
    return run_job(engine, "run", sources=resolve_sources(map(str, sources)), force=force)


def last_run(engine: Engine) -> dict[str, object]:
    with engine.connect() as conn:
        row = conn.execute(select(job_runs).order_by(job_runs.c.id.desc()).limit(1)).one()
    return dict(row._mapping)


def observations(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        query = select(weather_observations).order_by(
            weather_observations.c.station_id, weather_observations.c.obs_date
        )
        return [tuple(r) for r in conn.execute(query)]


def snapshot(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    """Everything a run decides, without run ids and timestamps."""
    with engine.connect() as conn:
        stats = conn.execute(
            select(weather_yearly_stats).order_by(
                weather_yearly_stats.c.station_id, weather_yearly_stats.c.year
            )
        )
        files = conn.execute(
            select(ingested_files.c.station_id, ingested_files.c.content_sha256).order_by(
                ingested_files.c.station_id, ingested_files.c.content_sha256
            )
        )
        queued = conn.execute(select(func.count()).select_from(aggregation_pending)).scalar()
        stations = conn.execute(select(station_summary).order_by(station_summary.c.station_id))
        return {
            "observations": observations(engine),
            "stats": [tuple(r) for r in stats],
            "ledger": [tuple(r) for r in files],
            "queued": [(queued,)],
            "stations": [tuple(r) for r in stations],
        }


def test_first_run_loads_every_row_with_missing_values_as_null(engine: Engine, tmp_path: Path):
    write_station(tmp_path / "in", STATION, ORIGINAL)

    assert run(engine, tmp_path / "in") == EXIT_OK

    rows = observations(engine)
    assert [(r[0], str(r[1]), r[2], r[3], r[4]) for r in rows] == [
        (STATION, "2000-01-01", 10, -20, 0),
        (STATION, "2000-01-02", 20, -10, 5),
        (STATION, "2000-01-03", None, -30, None),
    ]
    summary = last_run(engine)
    assert summary["status"] == "succeeded"
    assert (summary["files_loaded"], summary["records_inserted"]) == (1, 3)


def test_second_run_skips_the_unchanged_file_and_changes_nothing(engine: Engine, tmp_path: Path):
    write_station(tmp_path / "in", STATION, ORIGINAL)
    assert run(engine, tmp_path / "in") == EXIT_OK
    before = snapshot(engine)

    assert run(engine, tmp_path / "in") == EXIT_OK

    assert snapshot(engine) == before
    summary = last_run(engine)
    assert (summary["files_seen"], summary["files_skipped"], summary["files_loaded"]) == (1, 1, 0)
    assert summary["records_read"] == 0


def test_the_same_content_under_another_name_or_compressed_is_skipped(
    engine: Engine, tmp_path: Path
):
    write_station(tmp_path / "a", STATION, ORIGINAL)
    write_station(tmp_path / "b", STATION, ORIGINAL, gz=True)
    assert run(engine, tmp_path / "a") == EXIT_OK

    assert run(engine, tmp_path / "b") == EXIT_OK

    assert last_run(engine)["files_skipped"] == 1


def test_force_rereads_every_file_and_reports_its_rows_unchanged(engine: Engine, tmp_path: Path):
    write_station(tmp_path / "in", STATION, ORIGINAL)
    assert run(engine, tmp_path / "in") == EXIT_OK
    before = snapshot(engine)

    assert run(engine, tmp_path / "in", force=True) == EXIT_OK

    summary = last_run(engine)
    assert (summary["files_loaded"], summary["records_unchanged"]) == (1, 3)
    assert (summary["records_inserted"], summary["records_updated"]) == (0, 0)
    assert snapshot(engine) == before


def test_a_correction_replaces_changed_days_and_reports_inserted_updated_unchanged(
    engine: Engine, tmp_path: Path
):
    write_station(tmp_path / "day1", STATION, ORIGINAL)
    assert run(engine, tmp_path / "day1") == EXIT_OK
    correction = [
        noaa_line("20000101", 10, -20, 0),  # unchanged
        noaa_line("20000102", 25, -10, 5),  # max temperature corrected
        noaa_line("20000103", -9999, -30, 7),  # a missing value now known
        noaa_line("20000104", 30, 0, 0),  # a new day
    ]
    write_station(tmp_path / "day2", STATION, correction)

    assert run(engine, tmp_path / "day2") == EXIT_OK

    summary = last_run(engine)
    assert (
        summary["records_inserted"],
        summary["records_updated"],
        summary["records_unchanged"],
    ) == (1, 2, 1)
    assert [(str(r[1]), r[2], r[4]) for r in observations(engine)] == [
        ("2000-01-01", 10, 0),
        ("2000-01-02", 25, 5),
        ("2000-01-03", None, 7),
        ("2000-01-04", 30, 0),
    ]
    with engine.connect() as conn:
        stats = conn.execute(select(weather_yearly_stats)).one()
    assert stats.avg_max_temp_c == Decimal("2.17")  # (10 + 25 + 30) / 3 tenths
    assert stats.total_precipitation_cm == Decimal("0.12")
    assert stats.max_temp_days == 3


def test_a_partial_correction_leaves_days_it_does_not_mention(engine: Engine, tmp_path: Path):
    write_station(tmp_path / "day1", STATION, ORIGINAL)
    assert run(engine, tmp_path / "day1") == EXIT_OK
    write_station(tmp_path / "day2", STATION, [noaa_line("20000102", 99, -10, 5)])

    assert run(engine, tmp_path / "day2") == EXIT_OK

    assert [r[2] for r in observations(engine)] == [10, 99, None]


def test_files_given_in_one_run_apply_in_order_the_last_one_wins(engine: Engine, tmp_path: Path):
    write_station(tmp_path / "a", STATION, [noaa_line("20000101", 10, 0, 0)])
    write_station(tmp_path / "b", STATION, [noaa_line("20000101", 20, 0, 0)])

    assert run(engine, tmp_path / "a", tmp_path / "b") == EXIT_OK

    assert [r[2] for r in observations(engine)] == [20]


def test_bad_lines_are_rejected_recorded_and_counted_while_the_rest_loads(
    engine: Engine, tmp_path: Path
):
    lines = [
        noaa_line("20000101", 10, -20, 0),
        "20000102\t20\t-10",
        noaa_line("20010230", 1, 1, 1),
        noaa_line("20000104", 601, 1, 1),
        "20000105\tabc\t1\t1",
        noaa_line("20000106", 10, -20, 0),
    ]
    write_station(tmp_path / "in", STATION, lines)

    assert run(engine, tmp_path / "in") == EXIT_OK  # rejected lines are reported, not failures

    assert [str(r[1]) for r in observations(engine)] == ["2000-01-01", "2000-01-06"]
    with engine.connect() as conn:
        rejects = conn.execute(
            select(ingestion_rejects.c.line_no, ingestion_rejects.c.reason).order_by(
                ingestion_rejects.c.line_no
            )
        ).all()
    assert [line_no for line_no, _ in rejects] == [2, 3, 4, 5]
    assert "4 tab-separated fields" in rejects[0].reason
    assert "20010230" in rejects[1].reason
    assert "601" in rejects[2].reason
    assert "'abc'" in rejects[3].reason
    summary = last_run(engine)
    assert (summary["records_read"], summary["records_rejected"]) == (6, 4)


def test_dos_line_endings_bom_trailing_spaces_and_blank_lines_are_not_errors(
    engine: Engine, tmp_path: Path
):
    raw = (
        b"\xef\xbb\xbf"
        + b"\r\n".join(
            [
                noaa_line("20000101", 1, 0, 0).encode() + b"   ",
                b"",
                noaa_line("20000102", 2, 0, 0).encode(),
            ]
        )
        + b"\r\n\r\n"
    )
    write_station(tmp_path / "in", STATION, [], raw=raw)

    assert run(engine, tmp_path / "in") == EXIT_OK

    assert [r[2] for r in observations(engine)] == [1, 2]
    assert last_run(engine)["records_rejected"] == 0


def test_an_unreadable_file_fails_alone_and_the_run_exits_non_zero(engine: Engine, tmp_path: Path):
    write_station(tmp_path / "in", "USC00000001", ORIGINAL)
    (tmp_path / "in" / "USC00000002.txt.gz").write_bytes(b"this is not gzip")
    write_station(tmp_path / "in", "USC00000003", ORIGINAL)

    assert run(engine, tmp_path / "in") == EXIT_FAILED

    summary = last_run(engine)
    assert summary["status"] == "failed"
    assert (summary["files_loaded"], summary["files_failed"]) == (2, 1)
    assert {r[0] for r in observations(engine)} == {"USC00000001", "USC00000003"}
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(weather_yearly_stats)).scalar() == 2


@pytest.mark.parametrize(
    ("errno_code", "reason"),
    [(errno.EACCES, "Permission denied"), (errno.ENOSPC, "No space left on device")],
)
def test_a_source_file_that_cannot_be_read_fails_alone(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, errno_code: int, reason: str
):
    for station in ("USC00000001", "USC00000002", "USC00000003"):
        write_station(tmp_path / "in", station, ORIGINAL)
    real_open = LocalFile.open

    def open_file(self: LocalFile) -> BinaryIO:
        if self.station_id == "USC00000002":
            raise OSError(errno_code, reason, str(self.path))
        return real_open(self)

    # As root, file modes do not stop a read: the error is made where the read happens.
    monkeypatch.setattr(LocalFile, "open", open_file)

    assert run(engine, tmp_path / "in") == EXIT_FAILED
    summary = last_run(engine)
    assert (summary["files_loaded"], summary["files_failed"]) == (2, 1)
    assert {r[0] for r in observations(engine)} == {"USC00000001", "USC00000003"}


def test_a_file_that_cannot_be_staged_for_loading_fails_alone(
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    for station in ("USC00000001", "USC00000002", "USC00000003"):
        write_station(tmp_path / "in", station, ORIGINAL)
    loader = loader_class(engine)
    real_bulk_copy = loader.bulk_copy

    def bulk_copy(self: Loader, parsed: ParsedFile, target: Table) -> None:
        if parsed.station_id == "USC00000002":  # the disk fills while its TSV is written
            raise OSError(errno.ENOSPC, "No space left on device")
        real_bulk_copy(self, parsed, target)

    monkeypatch.setattr(loader, "bulk_copy", bulk_copy)

    assert run(engine, tmp_path / "in") == EXIT_FAILED
    assert {r[0] for r in observations(engine)} == {"USC00000001", "USC00000003"}
    assert "cannot stage the file for loading: No space left on device" in caplog.text
    monkeypatch.undo()
    assert run(engine, tmp_path / "in") == EXIT_OK  # the next run loads it
    assert {r[0] for r in observations(engine)} == {f"USC0000000{i}" for i in (1, 2, 3)}


def test_a_file_whose_load_fails_leaves_none_of_its_rows(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    write_station(tmp_path / "in", "USC00000001", ORIGINAL)
    write_station(tmp_path / "in", "USC00000002", ORIGINAL)
    real_record_file = ledger.record_file

    def fail_for_second_station(conn, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs["station_id"] == "USC00000002":
            raise SQLAlchemyError("simulated failure after the rows were written")
        return real_record_file(conn, **kwargs)

    monkeypatch.setattr(ledger, "record_file", fail_for_second_station)
    assert run(engine, tmp_path / "in") == EXIT_FAILED
    assert {r[0] for r in observations(engine)} == {"USC00000001"}

    monkeypatch.setattr(ledger, "record_file", real_record_file)
    assert run(engine, tmp_path / "in") == EXIT_OK
    assert len(observations(engine)) == 6


def test_parsing_in_a_worker_process_gives_the_same_result_as_inline(
    engine: Engine, tmp_path: Path
):
    folder = copy_real_files(tmp_path / "in", 10)
    lines = sum(path.read_bytes().count(b"\n") for path in folder.iterdir())  # all valid
    sources = resolve_sources([str(folder)])
    assert run_job(engine, "run", sources=sources, workers=1) == EXIT_OK
    with_worker = snapshot(engine)
    assert run_job(engine, "run", sources=sources, workers=0, force=True) == EXIT_OK

    assert snapshot(engine) == with_worker
    summary = last_run(engine)
    assert (summary["records_read"], summary["records_unchanged"]) == (lines, lines)


def _db_url_for_subprocess(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.slow
def test_a_run_killed_at_any_point_then_rerun_equals_one_clean_run(engine: Engine, tmp_path: Path):
    folder = copy_real_files(tmp_path / "in", 30)
    env = {**os.environ, "DATABASE_URL": _db_url_for_subprocess(engine), "WXHUB_LOG_FORMAT": "json"}
    command = [sys.executable, "-m", "wxhub.ingestion", str(folder)]

    for files_before_kill in (1, 7, 18):
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            if files_in_ledger(engine) >= files_before_kill:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)

        # Killed mid-run, not found finished: or this would compare two clean runs.
        assert process.wait() == -signal.SIGKILL, f"the run ended before {files_before_kill} files"
        assert files_before_kill <= files_in_ledger(engine) < 30

    assert (
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=False).returncode
        == EXIT_OK
    )
    killed_and_rerun = snapshot(engine)

    clean = make_engine(URL.create("sqlite", database=str(tmp_path / "clean.db")))
    assert run_job(clean, "run", sources=resolve_sources([str(folder)])) == EXIT_OK
    assert killed_and_rerun == snapshot(clean)
    assert len(killed_and_rerun["ledger"]) == 30
    clean.dispose()


def files_in_ledger(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(ingested_files)).scalar_one())
