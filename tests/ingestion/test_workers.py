"""How many parser processes a job starts: it depends on what is parsed, not only on the cores.

A worker costs its start-up and the transfer of every file to it; it pays off for many files,
or for one file heavy enough by itself (a by-year file of every station, any big file), whose
chunks it parses while the loader writes the ones before.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.ghcn_files import csv_line, write_csv
from wxhub import job
from wxhub.ingestion import workers
from wxhub.ingestion.sources import LocalFile, ObjectVersion, resolve_sources
from wxhub.ingestion.workers import (
    MIN_FILES_FOR_WORKERS,
    PARSE_BOUND_WORKERS,
    PARSE_HEAVY_BYTES,
    default_workers,
    is_parse_heavy,
)

STATION = "USC00110072"


@pytest.fixture
def cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with two cores, whatever this one has."""
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 2)


@dataclass(frozen=True)
class Listed:
    """An object store's file as its listing describes it (nothing is read)."""

    name: str
    station_id: str | None
    version: ObjectVersion | None

    @property
    def uri(self) -> str:
        return f"s3://bucket/{self.name}"


def small_station_file(folder: Path, station: str = STATION) -> LocalFile:
    path = write_csv(folder, station, [csv_line(station, "20140101", "TMAX", 10)])
    return LocalFile(path, station)


def test_one_by_year_file_gets_a_worker_beside_the_loader(cores: None, tmp_path: Path):
    by_year = LocalFile(
        write_csv(tmp_path, "2014", [csv_line(STATION, "20140101", "TMAX", 1)]), None
    )

    assert default_workers([by_year]) == 1


def test_a_few_small_station_files_are_parsed_inline(cores: None, tmp_path: Path):
    files = [small_station_file(tmp_path, f"USC0000000{k}") for k in range(3)]

    assert default_workers(files) == 0


def wx_station_file(folder: Path, station: str) -> LocalFile:
    path = folder / f"{station}.txt"
    path.write_text("20140101\t10\t-10\t0\n")
    return LocalFile(path, station)


def test_many_station_files_get_a_worker(cores: None, tmp_path: Path):
    files = [wx_station_file(tmp_path, f"USC000000{k:02d}") for k in range(MIN_FILES_FOR_WORKERS)]

    assert default_workers(files) == 1


def test_many_ghcn_csv_station_files_get_two_workers_as_their_parsing_is_the_slow_part(
    cores: None, tmp_path: Path
):
    count = MIN_FILES_FOR_WORKERS
    ghcn = [small_station_file(tmp_path, f"USC000000{k:02d}") for k in range(count)]
    wx = [wx_station_file(tmp_path, f"USW000000{k:02d}") for k in range(count)]

    assert default_workers(ghcn) == PARSE_BOUND_WORKERS == 2
    assert default_workers([*ghcn, *wx[:-1]]) == 2  # most of them
    assert default_workers([*ghcn, *wx]) == 1  # half: the loader may be the slow part
    listed = [
        Listed(f"USC000000{k:02d}.csv.gz", f"USC000000{k:02d}", ObjectVersion("e", 100))
        for k in range(count)
    ]
    assert default_workers(listed) == 2  # type: ignore[arg-type]  # by the listed names


def test_a_big_station_file_alone_gets_a_worker_by_its_size_on_disk_or_listed(
    cores: None, tmp_path: Path
):
    path = tmp_path / f"{STATION}.csv"
    with path.open("wb") as stream:
        stream.truncate(PARSE_HEAVY_BYTES)  # only its size matters: nothing is read
    listed_big = Listed(f"{STATION}.csv.gz", STATION, ObjectVersion("e", PARSE_HEAVY_BYTES))
    listed_small = Listed(f"{STATION}.csv.gz", STATION, ObjectVersion("e", 1000))

    assert default_workers([LocalFile(path, STATION)]) == 1
    assert default_workers([listed_big]) == 1  # type: ignore[list-item]  # a listing's view
    assert default_workers([listed_small]) == 0  # type: ignore[list-item]  # likewise


def test_a_by_year_object_is_parse_heavy_from_its_listing_alone():
    listed = Listed("2024.csv.gz", None, ObjectVersion("e", 1000))

    assert is_parse_heavy(listed)  # type: ignore[arg-type]


def test_a_single_core_machine_never_starts_a_worker(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
):
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 1)
    by_year = LocalFile(
        write_csv(tmp_path, "2014", [csv_line(STATION, "20140101", "TMAX", 1)]), None
    )

    assert default_workers([by_year]) == 0


def test_a_job_on_one_by_year_file_parses_it_in_a_worker_process(
    cores: None, engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    started: list[int] = []
    real_pool = job.parser_pool

    def counted_pool(count: int) -> AbstractContextManager[object]:
        started.append(count)
        return real_pool(count)

    monkeypatch.setattr(job, "parser_pool", counted_pool)
    lines = [csv_line(STATION, f"201401{day:02d}", "TMAX", day) for day in range(1, 29)]
    write_csv(tmp_path / "in", "2014", lines)

    assert job.run_job(engine, "run", sources=resolve_sources([str(tmp_path / "in")])) == 0

    assert started == [1]
