"""GHCN-Daily end to end: by-station and by-year files, corrections, big files, selections.

Every test runs against a real SQLite file and a real MariaDB database. The files are built
here from NOAA's published format (tests/ghcn_files.py, bench/gen_ghcn.py), never downloaded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine import URL

from tests.conftest import DATA_DIR, bench_module, throwaway_mysql_database, write_station
from tests.ghcn_files import (
    csv_line,
    dly_line,
    stations_line,
    write_csv,
    write_dly,
)
from tests.ingestion.test_ingest import last_run, observations, snapshot
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.db.schema import (
    data_version,
    ingested_files,
    ingestion_rejects,
    job_runs,
    weather_yearly_stats,
)
from wxhub.ingestion import main as ingestion_main
from wxhub.ingestion.formats import Format
from wxhub.ingestion.loader import Loader
from wxhub.ingestion.selection import SelectionSpec
from wxhub.ingestion.sources import resolve
from wxhub.job import EXIT_FAILED, EXIT_OK, run_job

A = "USC00110072"  # Illinois
B = "USW00094846"  # Illinois (Chicago O'Hare)
C = "CA1ON000025"  # Ontario
D = "USC00121747"  # Indiana
ELEMENTS = ("TMAX", "TMIN", "PRCP")


def run(
    engine: Engine,
    *sources: Path | str,
    fmt: Format | None = None,
    selection: SelectionSpec | None = None,
    shard: tuple[int, int] | None = None,
    force: bool = False,
    command: str = "run",
    workers: int | None = None,
) -> int:
    found = resolve(map(str, sources))
    return run_job(
        engine,
        command,
        sources=found.files,
        station_metadata=found.station_metadata,
        fmt=fmt,
        selection=selection,
        shard=shard,
        force=force,
        do_aggregate=command == "run",
        workers=workers,
    )


def stats(engine: Engine) -> list[tuple[object, ...]]:
    """The yearly statistics, without observation_days (a GHCN file has no line for a day
    whose three values are all missing; the wx format writes such days)."""
    t = weather_yearly_stats
    columns = [c for c in t.c if c.name != "observation_days"]
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(select(*columns).order_by(t.c.station_id, t.c.year))]


def version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(data_version.c.version)).scalar_one())


def ledger_rows(engine: Engine) -> list[tuple[object, ...]]:
    f = ingested_files
    query = select(f.c.station_id, f.c.records_read, f.c.values_qc_removed, f.c.qc_removed_by_flag)
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(query.order_by(f.c.id))]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    return bench_module("gen_ghcn")


# ---- the same data as wx_data, in NOAA's formats -------------------------------------------


@pytest.fixture(scope="module")
def real_stations(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wx")
    for path in sorted(DATA_DIR.glob("*.txt"))[::40]:
        shutil.copy(path, folder / path.name)
    return folder


def wx_without_flagged(src: Path, dest: Path, manifest: Any) -> Path:
    """The wx files with the values NOAA's QC flagged made missing: what GHCN files load."""
    flagged = {(f.station_id, f.date, ELEMENTS.index(f.element)) for f in manifest.flagged}
    for path in src.glob("*.txt"):
        lines = []
        for line in path.read_text().splitlines():
            date, *values = line.split("\t")
            for k in range(3):
                if (path.stem, date.strip(), k) in flagged:
                    values[k] = "-9999"
            lines.append("\t".join([date, *values]))
        write_station(dest, path.stem, lines)
    return dest


@pytest.mark.parametrize("layout", ["csv", "csv.gz", "dly"])
def test_ghcn_files_of_real_stations_give_the_statistics_of_wx_data_without_flagged_values(
    engine: Engine, real_stations: Path, gen: ModuleType, tmp_path: Path, layout: str
):
    manifest = gen.wx_to_ghcn(real_stations, tmp_path / "ghcn", layout=layout, seed=3, qc_rate=0.01)
    assert manifest.flagged  # the noise includes QC flags
    expected_from = wx_without_flagged(real_stations, tmp_path / "wx", manifest)

    assert run(engine, tmp_path / "ghcn") == EXIT_OK
    summary = last_run(engine)
    ghcn_stats = stats(engine)
    with fresh_like(engine) as wx_engine:
        assert run(wx_engine, expected_from) == EXIT_OK
        assert ghcn_stats == stats(wx_engine)

    assert json.loads(str(summary["qc_removed_by_flag"])) == manifest.q_flags
    assert summary["values_qc_removed"] == len(manifest.flagged)
    assert summary["values_other_elements"] == manifest.other_values


@contextmanager
def fresh_like(engine: Engine) -> Iterator[Engine]:
    """A second, migrated, empty database on the same backend as ``engine``."""
    if engine.dialect.name == "sqlite":
        path = Path(str(engine.url.database)).with_suffix(".second.db")
        second = make_engine(URL.create("sqlite", database=str(path)))
        migrate.upgrade(second)
        yield second
        second.dispose()
        return
    with throwaway_mysql_database() as url:
        second = make_engine(url)
        migrate.upgrade(second)
        yield second
        second.dispose()


# ---- corrections ----------------------------------------------------------------------------


def by_station(folder: Path, station: str, days: dict[str, tuple[int | None, ...]]) -> Path:
    lines = [
        csv_line(station, date, element, value)
        for date, values in days.items()
        for element, value in zip(ELEMENTS, values, strict=True)
        if value is not None
    ]
    return write_csv(folder, station, lines, gz=True)


def test_a_later_by_year_file_corrects_values_removes_newly_flagged_ones_and_reaggregates(
    engine: Engine, tmp_path: Path
):
    by_station(
        tmp_path / "first",
        A,
        {"20140101": (10, -10, 0), "20140102": (20, -5, 30), "20140103": (15, 0, 0)},
    )
    assert run(engine, tmp_path / "first") == EXIT_OK
    before = version(engine)
    later = [
        csv_line(A, "20140101", "TMAX", 10),  # unchanged
        csv_line(A, "20140101", "TMIN", -10),
        csv_line(A, "20140101", "PRCP", 0),
        csv_line(A, "20140102", "TMAX", 25),  # corrected
        csv_line(A, "20140102", "TMIN", -5),
        csv_line(A, "20140102", "PRCP", 30, q="D"),  # now flagged: removed
        csv_line(B, "20140102", "TMAX", 1),  # another station in the same by-year file
        csv_line(A, "20140104", "TMAX", 5),  # a new day
    ]
    write_csv(tmp_path / "later", "2014", later)

    assert run(engine, tmp_path / "later") == EXIT_OK

    assert observations(engine) == [
        (A, *day)
        for day in [
            (_d("2014-01-01"), 10, -10, 0),
            (_d("2014-01-02"), 25, -5, None),
            (_d("2014-01-03"), 15, 0, 0),  # a day the later file does not mention is kept
            (_d("2014-01-04"), 5, None, None),
        ]
    ] + [(B, _d("2014-01-02"), 1, None, None)]
    summary = last_run(engine)
    assert (summary["records_inserted"], summary["records_updated"]) == (2, 1)
    assert (summary["records_unchanged"], summary["values_qc_removed"]) == (1, 1)
    assert version(engine) > before  # new ETags
    with engine.connect() as conn:
        row = conn.execute(
            select(weather_yearly_stats).where(weather_yearly_stats.c.station_id == A)
        ).one()
    assert (row.avg_max_temp_c, row.total_precipitation_cm) == (Decimal("1.38"), Decimal("0.00"))
    assert (row.max_temp_days, row.precipitation_days) == (4, 2)


def _d(iso: str) -> dt.date:
    return dt.date.fromisoformat(iso)


def test_the_same_by_year_file_again_is_skipped_and_changes_nothing(engine: Engine, tmp_path: Path):
    write_csv(tmp_path / "in", "2014", [csv_line(A, "20140101", "TMAX", 1)])
    assert run(engine, tmp_path / "in") == EXIT_OK
    before = snapshot(engine), version(engine)

    assert run(engine, tmp_path / "in") == EXIT_OK

    assert (snapshot(engine), version(engine)) == before
    assert last_run(engine)["files_skipped"] == 1


# ---- big files, streamed --------------------------------------------------------------------


def shuffled_by_year(folder: Path, seed: int, *, days: int = 60) -> tuple[Path, list[str]]:
    """A by-year file of four stations whose lines are in no particular order."""
    rng = random.Random(seed)  # noqa: S311  (reproducible order, not a secret)
    lines = []
    for station in (A, B, C, D):
        for day in range(1, days + 1):
            date = f"2014{(day - 1) // 28 + 1:02d}{(day - 1) % 28 + 1:02d}"
            lines.append(csv_line(station, date, "TMAX", rng.randint(-100, 300), s="7"))
            lines.append(csv_line(station, date, "TMIN", rng.randint(-200, 100), s="7"))
            lines.append(csv_line(station, date, "PRCP", rng.randint(0, 200), q="", s="7"))
            lines.append(csv_line(station, date, "SNWD", 0, s="7"))
    lines[5] = csv_line(A, "20140102", "TMIN", 55, q="I")
    rng.shuffle(lines)
    return write_csv(folder, "2014", lines, header=True, gz=True), lines


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Files above 2 KB are streamed in 1 KB chunks (a by-year file is about a gigabyte)."""
    monkeypatch.setattr(ingestion_main, "MAX_FILE_BYTES", 2048)
    monkeypatch.setattr(ingestion_main, "CHUNK_BYTES", 1024)


def test_a_big_file_streamed_in_chunks_loads_what_it_would_whole(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    shuffled_by_year(tmp_path / "in", seed=1)
    with fresh_like(engine) as whole:
        assert run(whole, tmp_path / "in") == EXIT_OK
        expected = snapshot(whole), ledger_rows(whole)
    monkeypatch.setattr(ingestion_main, "MAX_FILE_BYTES", 2048)
    monkeypatch.setattr(ingestion_main, "CHUNK_BYTES", 1024)
    staged: list[int] = []
    real_stage = Loader.stage
    monkeypatch.setattr(
        Loader,
        "stage",
        lambda self, parsed: (staged.append(parsed.row_count), real_stage(self, parsed))[1],
    )

    assert run(engine, tmp_path / "in") == EXIT_OK

    assert len(staged) > 20  # it really was read chunk by chunk
    assert (snapshot(engine), ledger_rows(engine)) == expected


def test_an_unchanged_big_file_is_read_again_but_writes_nothing(
    engine: Engine, tmp_path: Path, tiny_chunks: None
):
    shuffled_by_year(tmp_path / "in", seed=2)
    assert run(engine, tmp_path / "in") == EXIT_OK
    before = snapshot(engine), version(engine)

    assert run(engine, tmp_path / "in") == EXIT_OK

    assert (snapshot(engine), version(engine)) == before
    assert (last_run(engine)["files_skipped"], last_run(engine)["records_read"]) == (1, 0)


def with_changed_values(lines: list[str], station: str, count: int) -> list[str]:
    """``lines`` with ``count`` unflagged TMAX values of ``station`` one tenth higher."""
    result = list(lines)
    picked = [
        i for i, line in enumerate(result) if line.startswith(station + ",") and ",TMAX," in line
    ]
    for i in [i for i in picked if ",I," not in result[i]][:count]:
        fields = result[i].split(",")
        fields[3] = str(int(fields[3]) + 1)
        result[i] = ",".join(fields)
    return result


def test_a_big_file_with_a_few_changed_values_rewrites_only_those_rows(
    engine: Engine, tmp_path: Path, tiny_chunks: None
):
    _, lines = shuffled_by_year(tmp_path / "in", seed=3)
    assert run(engine, tmp_path / "in") == EXIT_OK
    write_csv(tmp_path / "in", "2014", with_changed_values(lines, A, 3), header=True, gz=True)

    assert run(engine, tmp_path / "in") == EXIT_OK

    summary = last_run(engine)
    assert (summary["records_inserted"], summary["records_updated"]) == (0, 3)
    # Only station A's lines changed: only its 60 days were parsed and compared.
    assert summary["records_unchanged"] == 60 - 3
    assert summary["station_years_aggregated"] == 1


def test_a_reload_parses_only_the_stations_whose_lines_changed_and_ends_as_a_full_comparison(
    engine: Engine, tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch
):
    _, lines = shuffled_by_year(tmp_path / "first", seed=7)
    later = with_changed_values(lines, A, 2)
    flagged = next(
        i for i, line in enumerate(later) if line.startswith(B + ",") and ",TMIN," in line
    )
    later[flagged] = later[flagged].replace(",,7,", ",D,7,")  # newly QC-flagged: removed
    later.append(csv_line(B, "20141231", "PRCP", 12, s="7"))  # a new day
    write_csv(tmp_path / "later", "2014", later, header=True, gz=True)
    with fresh_like(engine) as full:
        for folder in ("first", "later"):
            assert run(full, tmp_path / folder, force=True) == EXIT_OK
        expected = observations(full), stats(full)
    assert run(engine, tmp_path / "first") == EXIT_OK
    parsed = counted_parsing(monkeypatch)

    assert run(engine, tmp_path / "later", workers=0) == EXIT_OK

    # A's and B's lines only, once each: not C's, D's nor the header.
    assert sum(parsed) == sum(line.startswith((A + ",", B + ",")) for line in later)
    summary = last_run(engine)
    assert (summary["records_inserted"], summary["records_updated"]) == (1, 3)
    assert summary["records_unchanged"] == 2 * 60 - 3
    assert summary["records_read"] == len(later)  # every line read, as in a full load
    assert (observations(engine), stats(engine)) == expected


def test_a_reload_for_a_selection_parses_only_its_changed_stations(
    engine: Engine,
    tmp_path: Path,
    tiny_chunks: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    """A and C changed; the run keeps A (and B) only: C's lines are left unparsed, and
    reported as lines of stations not selected, not as unchanged ones."""
    _, lines = shuffled_by_year(tmp_path / "first", seed=17)
    later = with_changed_values(with_changed_values(lines, A, 2), C, 4)
    write_csv(tmp_path / "later", "2014", later, header=True, gz=True)
    spec = SelectionSpec(patterns=(A, B))
    with fresh_like(engine) as full:
        for folder in ("first", "later"):
            assert run(full, tmp_path / folder, selection=spec, force=True) == EXIT_OK
        expected = observations(full), stats(full)
    assert run(engine, tmp_path / "first", selection=spec) == EXIT_OK
    parsed = counted_parsing(monkeypatch)
    caplog.set_level(logging.INFO, logger="wxhub.ingestion.main")

    assert run(engine, tmp_path / "later", selection=spec, workers=0) == EXIT_OK

    assert sum(parsed) == sum(line.startswith(A + ",") for line in later)
    assert last_run(engine)["records_updated"] == 2
    assert (observations(engine), stats(engine)) == expected
    (file_line,) = [r for r in caplog.records if getattr(r, "event", None) == "file"]
    of_c = sum(line.startswith(C + ",") for line in later)
    of_b_d = sum(line.startswith((B + ",", D + ",")) for line in later)
    assert (file_line.lines_not_selected, file_line.lines_unchanged) == (of_c, of_b_d)


def test_a_reload_that_adds_a_day_for_every_station_parses_all_without_reading_digests(
    engine: Engine, tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch
):

    _, lines = shuffled_by_year(tmp_path / "in", seed=11)
    assert run(engine, tmp_path / "in") == EXIT_OK
    lines += [csv_line(s, "20141231", "TMAX", 5, s="7") for s in (A, B, C, D)]  # the next night
    write_csv(tmp_path / "in", "2014", lines, header=True, gz=True)
    parsed = counted_parsing(monkeypatch)
    opened = counted_opens(monkeypatch)

    assert run(engine, tmp_path / "in", workers=0) == EXIT_OK

    assert len(opened) == 2  # hashed, then parsed: no read for digests that all moved
    assert sum(parsed) == len(lines)
    assert last_run(engine)["records_inserted"] == 4


def test_a_big_file_with_the_same_lines_in_another_order_parses_and_writes_nothing(
    engine: Engine, tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch
):
    _, lines = shuffled_by_year(tmp_path / "in", seed=12)
    assert run(engine, tmp_path / "in") == EXIT_OK
    before = observations(engine), stats(engine), version(engine)
    random.Random(13).shuffle(lines)  # noqa: S311  (a new order: a new hash, the same lines)
    write_csv(tmp_path / "in", "2014", lines, header=True, gz=True)
    parsed = counted_parsing(monkeypatch)

    assert run(engine, tmp_path / "in", workers=0) == EXIT_OK

    assert sum(parsed) == 0
    summary = last_run(engine)
    assert (summary["files_loaded"], summary["records_read"]) == (1, len(lines))
    assert (summary["records_inserted"], summary["records_updated"]) == (0, 0)
    assert (observations(engine), stats(engine), version(engine)) == before


def test_a_forced_reload_of_a_big_file_parses_every_line_again(
    engine: Engine, tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch
):
    _, lines = shuffled_by_year(tmp_path / "in", seed=8)
    assert run(engine, tmp_path / "in") == EXIT_OK
    write_csv(tmp_path / "in", "2014", with_changed_values(lines, C, 1), header=True, gz=True)
    parsed = counted_parsing(monkeypatch)

    assert run(engine, tmp_path / "in", workers=0, force=True) == EXIT_OK

    assert sum(parsed) == len(lines)
    assert (last_run(engine)["records_updated"], last_run(engine)["records_unchanged"]) == (
        1,
        4 * 60 - 1,
    )


def test_a_new_bad_line_in_a_reloaded_big_file_is_rejected_with_its_line_in_the_file(
    engine: Engine, tmp_path: Path, tiny_chunks: None
):
    _, lines = shuffled_by_year(tmp_path / "in", seed=9)
    assert run(engine, tmp_path / "in") == EXIT_OK
    lines.insert(100, csv_line(D, "20140231", "TMAX", 5))  # no such day
    write_csv(tmp_path / "in", "2014", lines, header=True, gz=True)

    assert run(engine, tmp_path / "in") == EXIT_OK

    with engine.connect() as conn:
        rejects = conn.execute(select(ingestion_rejects.c.line_no, ingestion_rejects.c.line_text))
        assert [tuple(r) for r in rejects] == [(102, lines[100])]  # after the header: line 102
    assert last_run(engine)["records_rejected"] == 1


def test_a_big_file_that_changes_between_its_two_reads_is_not_loaded(
    engine: Engine, tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch
):
    from wxhub.ingestion.sources import LocalFile  # noqa: PLC0415

    path, lines = shuffled_by_year(tmp_path / "in", seed=10)
    assert run(engine, tmp_path / "in") == EXIT_OK
    before = snapshot(engine)
    write_csv(tmp_path / "in", "2014", with_changed_values(lines, A, 1), header=True, gz=True)
    real_open = LocalFile.open
    opened: list[str] = []

    def change_before_second_read(self: LocalFile) -> Any:
        opened.append(self.name)
        if len(opened) == 2:  # hashed and digested already; the file changes under the job
            write_csv(tmp_path / "in", "2014", with_changed_values(lines, B, 1), gz=True)
        return real_open(self)

    monkeypatch.setattr(LocalFile, "open", change_before_second_read)

    assert run(engine, tmp_path / "in") == EXIT_FAILED

    assert opened == [path.name, path.name]
    assert snapshot(engine) == before
    with engine.connect() as conn:
        assert conn.execute(
            select(job_runs.c.files_failed).order_by(job_runs.c.id.desc())
        ).first() == (1,)


def test_a_big_file_that_fails_midway_leaves_nothing_and_the_next_run_loads_it_whole(
    engine: Engine, tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch
):
    shuffled_by_year(tmp_path / "in", seed=4)
    write_csv(tmp_path / "in", A, [csv_line(A, "20130101", "TMAX", 7)])  # a small file first
    real_stage = Loader.stage
    calls = []

    def failing_stage(self: Loader, parsed: Any) -> None:
        calls.append(1)
        if len(calls) == 5:
            raise OSError(28, "No space left on device")
        real_stage(self, parsed)

    monkeypatch.setattr(Loader, "stage", failing_stage)
    assert run(engine, tmp_path / "in") == EXIT_FAILED
    assert [r[0] for r in observations(engine)] == [A]  # the small file only
    monkeypatch.setattr(Loader, "stage", real_stage)

    assert run(engine, tmp_path / "in") == EXIT_OK

    with fresh_like(engine) as clean:
        assert run(clean, tmp_path / "in") == EXIT_OK
        assert observations(engine) == observations(clean)
        assert stats(engine) == stats(clean)


def counted_parsing(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Every parse of a file or chunk this process makes, by line count (run the job with
    ``workers=0``: a worker's parsing is not seen here)."""
    parsed: list[int] = []
    for name in ("parse_for_loading", "parse_stations_for_loading"):
        monkeypatch.setattr(ingestion_main, name, _counting(getattr(ingestion_main, name), parsed))
    return parsed


def _counting(real: Any, parsed: list[int]) -> Any:
    def counting(data: bytes, *args: Any, **kwargs: Any) -> Any:
        result = real(data, *args, **kwargs)
        parsed.append(result.lines_read or 0)
        return result

    return counting


def counted_opens(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of every local file opened for reading, in order."""
    from wxhub.ingestion.sources import LocalFile  # noqa: PLC0415

    opened: list[str] = []
    real_open = LocalFile.open
    monkeypatch.setattr(
        LocalFile, "open", lambda self: (opened.append(self.name), real_open(self))[1]
    )
    return opened


def test_a_big_file_already_loaded_is_skipped_after_one_read_and_never_parsed(
    engine: Engine, tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch
):

    shuffled_by_year(tmp_path / "in", seed=5)
    assert run(engine, tmp_path / "in") == EXIT_OK
    before = snapshot(engine), version(engine)
    parsed = counted_parsing(monkeypatch)
    opened = counted_opens(monkeypatch)

    assert run(engine, tmp_path / "in", workers=0) == EXIT_OK

    assert (parsed, opened) == ([], ["2014.csv.gz"])
    summary = last_run(engine)
    assert (summary["files_skipped"], summary["files_loaded"], summary["records_read"]) == (1, 0, 0)
    assert (snapshot(engine), version(engine)) == before


def test_a_changed_big_file_is_hashed_then_read_again_to_load_its_changed_stations(
    engine: Engine, tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch
):
    _, lines = shuffled_by_year(tmp_path / "in", seed=6)
    assert run(engine, tmp_path / "in") == EXIT_OK
    lines.append(csv_line(A, "20141231", "TMAX", 17))
    write_csv(tmp_path / "in", "2014", lines, header=True, gz=True)
    parsed = counted_parsing(monkeypatch)

    assert run(engine, tmp_path / "in", workers=0) == EXIT_OK

    assert sum(parsed) == sum(line.startswith(A + ",") for line in lines)  # A's lines, once
    summary = last_run(engine)
    assert (summary["files_loaded"], summary["records_inserted"]) == (1, 1)
    with fresh_like(engine) as clean:
        assert run(clean, tmp_path / "in", workers=0) == EXIT_OK
        assert observations(engine) == observations(clean)
        assert stats(engine) == stats(clean)


@contextmanager
def statements_of(engine: Engine) -> Iterator[list[str]]:
    """The SQL statements sent while the block runs."""
    sent: list[str] = []

    def record(*args: Any) -> None:
        sent.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_chunks_are_appended_without_a_key_and_folded_into_days_once_at_the_end(engine: Engine):
    from wxhub.ingestion.formats import ghcn_csv  # noqa: PLC0415
    from wxhub.ingestion.loader import make_loader  # noqa: PLC0415

    first = ghcn_csv.parse(
        "\n".join(
            [csv_line(A, "20140101", "TMAX", 10), csv_line(B, "20140101", "PRCP", 3)]
        ).encode()
    )
    # The same days again: A's other element, and B's PRCP QC-flagged in this chunk.
    second = ghcn_csv.parse(
        "\n".join(
            [csv_line(A, "20140101", "TMIN", -5), csv_line(B, "20140101", "PRCP", 9, q="X")]
        ).encode(),
        first_line_no=3,
    )
    with engine.connect() as conn:
        loader = make_loader(conn)
        with conn.begin():
            loader.start_staging()
            with statements_of(engine) as staging_sql:
                loader.stage(first)
                loader.stage(second)
            with statements_of(engine) as applying_sql:
                counts = loader.apply_staging()

    staged = " ".join(staging_sql).lower()
    assert "wxhub_staging_observations" not in staged  # the keyed table: untouched per chunk
    assert "on conflict" not in staged
    assert "on duplicate key" not in staged
    # One statement from the heap to the keyed table: a GROUP BY on SQLite, an ordered
    # INSERT ... ON DUPLICATE KEY UPDATE on MySQL/MariaDB (no internal temporary table).
    folds = [q for q in applying_sql if "from wxhub_staging_heap" in q.lower()]
    assert len(folds) == 1
    assert folds[0].lower().startswith("insert into wxhub_staging_observations")
    assert counts.inserted == 2
    assert [row[:5] for row in observations(engine)] == [
        (A, dt.date(2014, 1, 1), 10, -5, None),
        (B, dt.date(2014, 1, 1), None, None, 3),
    ]


# ---- choosing stations ----------------------------------------------------------------------


@pytest.fixture
def region(tmp_path: Path) -> Path:
    """By-station files of four stations, NOAA's station list, and a by-year file."""
    folder = tmp_path / "region"
    for station in (A, B, C, D):
        by_station(folder, station, {"20140101": (10, 0, 0)})
    (folder / "ghcnd-stations.txt").write_text(
        "\n".join(
            [
                stations_line(A, 41.2, -88.1, 200.0, "IL", "ALEDO"),
                stations_line(
                    B, 41.995, -87.9336, 201.8, "IL", "CHICAGO OHARE INTL AP", wmo_id="72530"
                ),
                stations_line(C, 43.6, -79.4, 113.0, "ON", "TORONTO"),
                stations_line(D, 39.8, -86.2, 241.0, "IN", "INDIANAPOLIS"),
            ]
        )
        + "\n"
    )
    write_csv(
        folder,
        "2015",
        [csv_line(s, "20150101", "TMAX", 5) for s in (A, B, C, D)],
    )
    return folder


def stations_loaded(engine: Engine) -> list[str]:
    return sorted({str(r[0]) for r in observations(engine)})


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (SelectionSpec(patterns=("USC*",)), [A, D]),
        (SelectionSpec(patterns=("USW00094846", "CA*")), [C, B]),
        (SelectionSpec(countries=("CA",)), [C]),
        (SelectionSpec(states=("IL", "IN")), [A, D, B]),
        (SelectionSpec(bbox=(-89.0, 41.0, -87.0, 42.5)), [A, B]),
        (SelectionSpec(countries=("US",), states=("IL",), patterns=("USC*",)), [A]),
        (SelectionSpec(), [C, A, D, B]),
    ],
)
def test_a_selection_keeps_its_stations_by_name_and_by_line(
    engine: Engine, region: Path, spec: SelectionSpec, expected: list[str]
):
    assert run(engine, region, selection=spec) == EXIT_OK

    assert stations_loaded(engine) == sorted(expected)
    with engine.connect() as conn:
        per_station = conn.execute(
            select(weather_yearly_stats.c.station_id, func.count()).group_by(
                weather_yearly_stats.c.station_id
            )
        ).all()
    assert {s: n for s, n in per_station} == dict.fromkeys(expected, 2)  # 2014 and 2015


def test_by_station_files_a_selection_leaves_out_are_never_read(
    engine: Engine, region: Path, monkeypatch: pytest.MonkeyPatch
):

    opened = counted_opens(monkeypatch)

    assert run(engine, region, selection=SelectionSpec(patterns=(A,))) == EXIT_OK

    assert sorted(opened) == ["2015.csv", f"{A}.csv.gz", "ghcnd-stations.txt"]


def test_a_by_year_file_read_for_another_selection_is_read_again(engine: Engine, region: Path):
    assert run(engine, region, selection=SelectionSpec(patterns=(A,))) == EXIT_OK
    assert run(engine, region, selection=SelectionSpec(patterns=(A,))) == EXIT_OK
    assert last_run(engine)["files_skipped"] == 2  # its station file and the by-year file

    assert run(engine, region, selection=SelectionSpec(patterns=(B,))) == EXIT_OK

    assert last_run(engine)["files_loaded"] == 2
    assert stations_loaded(engine) == [A, B]


def test_a_selection_by_state_without_station_metadata_is_a_usage_error_that_says_so(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
):
    by_station(tmp_path / "in", A, {"20140101": (1, 1, 1)})

    result = wxhub_in_process(
        "run",
        str(tmp_path / "in"),
        "--state",
        "IL",
        env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"},
    )

    assert result.exit_code == 2
    errors = [json.loads(line) for line in result.stdout.splitlines() if '"ERROR"' in line]
    assert any("no station metadata is loaded" in e["message"] for e in errors)


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--state", "Illinois", "is not a list of two-letter state codes"),
        ("--country", "us", "is not a list of two-letter country codes"),
        ("--bbox", "1,2,3", "is not four numbers"),
        ("--bbox", "-87,41,-89,42", "each minimum at most its maximum"),
        ("--bbox", "-87,41,-86,95", "latitudes within -90..90"),
        ("--stations", "USC;DROP", "is not a list of station ids or globs"),
        ("--format", "xml", "is not one of"),
    ],
)
def test_a_bad_selection_option_is_a_usage_error_naming_it(
    wxhub_in_process: Callable[..., Result], tmp_path: Path, option: str, value: str, says: str
):
    result = wxhub_in_process(
        "run", str(tmp_path), option, value, env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    )

    assert result.exit_code == 2
    assert option in result.output
    assert says in result.output


def test_the_selection_can_come_from_the_environment_of_the_scheduled_task(
    wxhub_in_process: Callable[..., Result], region: Path, tmp_path: Path
):
    db = tmp_path / "x.db"
    result = wxhub_in_process(
        "run",
        str(region),
        env={"DATABASE_URL": f"sqlite:///{db}", "WXHUB_STATE": "IN", "WXHUB_COUNTRY": "US"},
    )

    assert result.exit_code == 0, result.output
    engine = make_engine(URL.create("sqlite", database=str(db)))
    assert stations_loaded(engine) == [D]
    engine.dispose()


def test_shards_split_a_by_year_file_by_its_lines(engine: Engine, region: Path):
    with fresh_like(engine) as whole:
        assert run(whole, region) == EXIT_OK
        expected = observations(whole), stats(whole)

    for k in (1, 2, 3):
        assert run(engine, region, shard=(k, 3), command="ingest") == EXIT_OK
    assert run_job(engine, "aggregate", do_ingest=False) == EXIT_OK

    assert (observations(engine), stats(engine)) == expected


# ---- formats forced, and .dly sources -------------------------------------------------------


def test_a_forced_format_reads_a_file_whatever_its_name(engine: Engine, tmp_path: Path):
    path = write_dly(tmp_path / "in", A, [dly_line(A, 2014, 1, "TMAX", {1: 10})])
    path.rename(path.with_name(f"{A}.txt"))

    assert run(engine, tmp_path / "in", fmt="ghcn-dly") == EXIT_OK

    assert observations(engine) == [(A, _d("2014-01-01"), 10, None, None)]


def test_a_file_too_big_for_the_wx_format_fails_alone(
    engine: Engine, tmp_path: Path, tiny_chunks: None, caplog: pytest.LogCaptureFixture
):
    days = [
        f"{y}{m:02d}{d:02d}\t1\t1\t1"
        for y in (2013, 2014)
        for m in (1, 2, 3, 4)
        for d in range(1, 29)
    ]
    write_station(tmp_path / "in", A, days)
    write_station(tmp_path / "in", B, ["20140101\t1\t1\t1"])

    assert run(engine, tmp_path / "in") == EXIT_FAILED

    assert stations_loaded(engine) == [B]
    assert (last_run(engine)["files_loaded"], last_run(engine)["files_failed"]) == (1, 1)
    failures = [
        r.getMessage()
        for r in caplog.records
        if r.__dict__.get("event") == "file" and r.__dict__.get("status") == "failed"
    ]
    assert len(failures) == 1
    assert "larger than 2048 bytes, too big for one station's file in the wx format" in failures[0]
