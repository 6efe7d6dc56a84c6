"""Benchmark GHCN-Daily as users bring it, beside the least implementation of each figure.

1. The 167 stations as GHCN-Daily ``csv.gz`` by-station files (bench/gen_ghcn.py: wx_data
   with the noise real files have: other elements, M/S flags, observation times, headers on
   half of them, 0.1% QC-flagged values), loaded by ``wxhub run``, beside the same run from
   wx_data (the seed's format) in the same session: the ratio is the figure (goal: at most 2x).
2. Their yearly statistics, compared to the hundredth with those of wx_data whose QC-flagged
   values were made missing (goal: identical).
3. A synthetic by-year file (5,000 stations, over 8 million lines, lines in no order), loaded
   into an empty database, then again unchanged, then with 100 values changed: the peak memory
   of the job's process tree (goal: under 400 MB whatever the file's size), the rows written
   by the last run (goal: exactly the 100), and the reloads' time beside reading the file
   (gunzip, split into lines, SHA-256 in one Python process: the least any reload must do).

    python bench/bench_ghcn.py [--repeat 3] [--skip-mysql] [--work /tmp/wxhub-bench-ghcn]

Run it alone on the machine: two cores shared with anything else halve the figures.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

import gen_ghcn
from bench_run import (
    DATA,
    REPO,
    SAMPLE_INTERVAL_S,
    WXHUB,
    _tree_rss_kb,
    calibration_s,
    machine,
    mysql_url_factory,
    sqlite_url,
)
from wxhub.db.schema import weather_yearly_stats

BY_YEAR_STATIONS = 5000
BY_YEAR = 2024
CHANGES = 100
Factory = Callable[[], tuple[str, Callable[[], None]]]


@dataclass
class Run:
    seconds: float
    peak_rss_mb: float
    summary: dict[str, Any]


def run_job(args: list[str], url: str) -> Run:
    """One `wxhub run` in a subprocess: wall time, peak RSS of its tree, its summary line."""
    env = {**os.environ, "DATABASE_URL": url, "WXHUB_LOG_FORMAT": "json"}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen([*WXHUB, "run", *args], env=env, stdout=out, cwd=REPO)
        peak = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, _tree_rss_kb(process.pid))
                time.sleep(SAMPLE_INTERVAL_S)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = process.wait()
        elapsed = time.perf_counter() - started
        done.set()
        sampler.join()
        out.seek(0)
        lines = out.read().decode().splitlines()
    if code != 0:
        raise SystemExit(f"wxhub run {' '.join(args)} exited {code}: {lines[-3:]}")
    summary = next(
        event
        for event in map(_json_or_none, reversed(lines))
        if event is not None and event.get("event") == "summary"
    )
    return Run(elapsed, peak / 1024, summary)


def _json_or_none(line: str) -> dict[str, Any] | None:
    """A JSON log line's fields (however the encoder spaced them), or None for other output."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


@dataclass
class Inputs:
    by_station: Path
    wx_without_flagged: Path
    by_year: Path
    by_year_changed: Path
    by_year_lines: int


def prepare(work: Path) -> Inputs:
    """The input files, generated once into ``work`` (deterministic, seed 1)."""
    by_station = work / "csv.gz-by-station"
    if not (by_station / "manifest.json").exists():
        shutil.rmtree(by_station, ignore_errors=True)
        gen_ghcn.wx_to_ghcn(DATA, by_station, layout="csv.gz", seed=1)
    manifest = gen_ghcn.Manifest.read(by_station / "manifest.json")
    wx = work / "wx-without-flagged"
    if not wx.exists():
        flagged = {
            (f.station_id, f.date, ("TMAX", "TMIN", "PRCP").index(f.element))
            for f in manifest.flagged
        }
        wx.mkdir()
        for path in sorted(DATA.glob("*.txt")):
            lines = []
            for line in path.read_text().splitlines():
                date, *values = line.split("\t")
                for k in range(3):
                    if (path.stem, date.strip(), k) in flagged:
                        values[k] = "-9999"
                lines.append("\t".join([date, *values]))
            (wx / path.name).write_text("\n".join(lines) + "\n")
    by_year_dir, changed_dir = work / "by-year", work / "by-year-changed"
    by_year, changed = by_year_dir / f"{BY_YEAR}.csv.gz", changed_dir / f"{BY_YEAR}.csv.gz"
    if not changed.exists():
        by_year_dir.mkdir(exist_ok=True)
        changed_dir.mkdir(exist_ok=True)
        gen_ghcn.synthetic_by_year(
            by_year, year=BY_YEAR, stations=BY_YEAR_STATIONS, seed=1, gz=True
        )
        gen_ghcn.changed_copy(by_year, changed, changes=CHANGES, seed=1)
    with gzip.open(by_year, "rb") as stream:
        count = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
    return Inputs(by_station, wx, by_year_dir, changed_dir, count)


def read_only(path: Path) -> float:
    """The least a reload of ``path`` must do: gunzip, split into lines, SHA-256."""
    started = time.perf_counter()
    digest = hashlib.sha256()
    lines = 0
    with gzip.open(path, "rb") as stream:
        while chunk := stream.read(4 << 20):
            digest.update(chunk)
            lines += len(chunk.split(b"\n"))
    return time.perf_counter() - started


def read_and_group(path: Path) -> float:
    """The least a reload that finds which stations changed must do, in one Python process:
    gunzip, split into lines, a checksum of each line added to its station's sum."""
    started = time.perf_counter()
    sums: dict[bytes, int] = {}
    get = sums.get
    with gzip.open(path, "rb") as stream:
        carry = b""
        while chunk := stream.read(4 << 20):
            lines = (carry + chunk).split(b"\n")
            carry = lines.pop()
            for line in lines:
                sums[line[:11]] = get(line[:11], 0) + zlib.crc32(line)
    return time.perf_counter() - started


def yearly_stats(url: str) -> list[tuple[object, ...]]:
    t = weather_yearly_stats
    columns = [c for c in t.c if c.name != "observation_days"]
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(*columns).order_by(t.c.station_id, t.c.year))]
    engine.dispose()
    return rows


def bench_backend(
    name: str, factory: Factory, inputs: Inputs, repeat: int, *, by_year_only: bool = False
) -> list[str]:
    if by_year_only:
        notes: list[str] = []
        return [*bench_by_year(name, factory, inputs, notes), "", *notes]
    wx_runs, ghcn_runs = [], []
    same_stats: bool | None = None
    station_years = 0
    for _ in range(repeat):
        url, cleanup = factory()
        try:
            wx_runs.append(run_job([str(DATA)], url))
        finally:
            cleanup()
        url, cleanup = factory()
        expected_url, expected_cleanup = factory()
        try:
            ghcn_runs.append(run_job([str(inputs.by_station)], url))
            if same_stats is None:
                run_job([str(inputs.wx_without_flagged)], expected_url)
                got, expected = yearly_stats(url), yearly_stats(expected_url)
                same_stats, station_years = got == expected, len(got)
        finally:
            cleanup()
            expected_cleanup()
    wx_s = statistics.median(r.seconds for r in wx_runs)
    ghcn_s = statistics.median(r.seconds for r in ghcn_runs)
    ghcn_summary = ghcn_runs[0].summary
    rows = [
        f"| {name}: wx_data, full run (the baseline) | {wx_s:.2f} | {_spread(wx_runs)} | "
        f"{max(r.peak_rss_mb for r in wx_runs):.0f} | 1.00x |",
        f"| {name}: the same as GHCN csv.gz by station, full run | {ghcn_s:.2f} | "
        f"{_spread(ghcn_runs)} | {max(r.peak_rss_mb for r in ghcn_runs):.0f} | "
        f"**{ghcn_s / wx_s:.2f}x** |",
    ]
    notes = [
        f"{name}: the GHCN run read {ghcn_summary['records_read']:,} lines, loaded "
        f"{ghcn_summary['records_inserted']:,} station-days, left out "
        f"{ghcn_summary['values_qc_removed']:,} QC-flagged values "
        f"{ghcn_summary['qc_removed_by_flag']} and {ghcn_summary['values_other_elements']:,} "
        f"values of other elements; yearly statistics of its {station_years:,} station-years "
        f"{'IDENTICAL' if same_stats else 'DIFFERENT'} to wx_data's without the flagged values",
    ]
    rows += bench_by_year(name, factory, inputs, notes)
    return [*rows, "", *notes]


def bench_by_year(name: str, factory: Factory, inputs: Inputs, notes: list[str]) -> list[str]:
    url, cleanup = factory()
    try:
        first = run_job([str(inputs.by_year)], url)
        unchanged = run_job([str(inputs.by_year)], url)
        second = run_job([str(inputs.by_year_changed)], url)
    finally:
        cleanup()
    # The same reload comparing every station (--force: what a reload did before the
    # per-station digests), from the same starting state.
    url, cleanup = factory()
    try:
        run_job([str(inputs.by_year)], url)
        forced = run_job(["--force", str(inputs.by_year_changed)], url)
    finally:
        cleanup()
    reading = min(read_only(inputs.by_year / f"{BY_YEAR}.csv.gz") for _ in range(2))
    grouping = min(read_and_group(inputs.by_year / f"{BY_YEAR}.csv.gz") for _ in range(2))
    s = second.summary
    notes.append(
        f"{name}: by-year file of {inputs.by_year_lines:,} lines: first load "
        f"{first.summary['records_inserted']:,} station-days; with {CHANGES} values changed: "
        f"{s['records_inserted']} inserted, {s['records_updated']} updated, "
        f"{s['records_unchanged']:,} unchanged, {s['station_years_aggregated']} station-years "
        f"re-aggregated, {s.get('lines_unchanged', 0):,} lines of unchanged stations not parsed; "
        f"--force: {forced.summary['records_updated']} updated, "
        f"{forced.summary['records_unchanged']:,} unchanged"
    )
    return [
        f"| {name}: by-year file, {inputs.by_year_lines / 1e6:.1f}M lines, into an empty "
        f"database | {first.seconds:.2f} | | **{first.peak_rss_mb:.0f}** | |",
        f"| {name}: the same file again, unchanged | {unchanged.seconds:.2f} | | "
        f"{unchanged.peak_rss_mb:.0f} | {unchanged.seconds / reading:.1f}x reading it |",
        f"| {name}: the same with {CHANGES} values changed | {second.seconds:.2f} | | "
        f"**{second.peak_rss_mb:.0f}** | {second.seconds / reading:.1f}x reading it |",
        f"| {name}: the same, `--force` (every station parsed and compared) | "
        f"{forced.seconds:.2f} | | {forced.peak_rss_mb:.0f} | {forced.seconds / reading:.1f}x "
        "reading it |",
        f"| reading the file (gunzip, lines, SHA-256: the least a reload does) | {reading:.2f} "
        "| | | 1.0x |",
        f"| reading it and summing a checksum of each line per station (the least that finds "
        f"which stations changed) | {grouping:.2f} | | | {grouping / reading:.1f}x reading it; "
        f"the reload with 100 changes is {second.seconds / grouping:.1f}x this |",
    ]


def _spread(runs: list[Run]) -> str:
    seconds = [r.seconds for r in runs]
    return f"{min(seconds):.2f}-{max(seconds):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    parser.add_argument("--skip-mysql", action="store_true")
    parser.add_argument(
        "--by-year-only", action="store_true", help="only the by-year file's loads and reloads"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "wxhub-bench-ghcn"
    )
    options = parser.parse_args()
    options.work.mkdir(parents=True, exist_ok=True)

    inputs = prepare(options.work)
    calibration_before = calibration_s()
    only = options.by_year_only
    rows = bench_backend("SQLite", sqlite_url, inputs, options.repeat, by_year_only=only)
    if not options.skip_mysql:
        admin = create_engine(options.mysql_url)
        with admin.connect() as conn:
            version = conn.execute(text("SELECT VERSION()")).scalar()
        admin.dispose()
        print(f"MySQL server: {version}")
        rows += bench_backend(
            "MariaDB",
            mysql_url_factory(options.mysql_url),
            inputs,
            options.repeat,
            by_year_only=only,
        )

    print(f"Machine: {machine()}; {options.repeat} runs of each full run")
    print(
        f"Calibration (10M empty Python loop turns): {calibration_before:.2f} s before, "
        f"{calibration_s():.2f} s after\n"
    )
    print("| measurement | median s | spread s | peak RSS MB | ratio |")
    print("| --- | ---: | ---: | ---: | ---: |")
    table = [r for r in rows if r.startswith("|")]
    print("\n".join(table))
    print()
    print("\n".join(r for r in rows if r and not r.startswith("|")))


if __name__ == "__main__":
    main()
