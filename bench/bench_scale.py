"""Benchmark how the job and the API grow with the data: 1x (data/wx_data) to 10x.

Factor F is the 167 real station files plus (F - 1) x 167 synthetic ones from
bench/gen_synthetic.py (seed 1, written once under /tmp and reused): 10x is 1,670 stations,
about 17M rows. Keeping the real files in every factor means the API is asked about the same
real station (USC00110072) at every size, beside 1,503 synthetic neighbours.

For each factor, on SQLite and on MariaDB (a fresh `wxhub_bench_*` database, dropped after):

- `wxhub migrate`, then `wxhub ingest SOURCES` and `wxhub aggregate`, each the real command in
  a subprocess, wall time and peak resident memory of its process tree (as bench_run.py);
- the database size: the SQLite file (with its WAL), or InnoDB's data_length + index_length
  from information_schema after ANALYZE TABLE;
- `wxhub serve`, then wrk at one connection for p50/p99 of: one station's first page, a page
  jump near the end of all observations (`page=N`), one station's yearly statistics, the
  station list; with the answer cache off (`WXHUB_API_CACHE_MB=0`: the database's work) and
  as deployed (default cache).

One Markdown table per backend, one column per factor and the growth ratio last/first.

    python bench/bench_scale.py [--factors 1,10] [--seconds 5] [--skip-mysql] [--skip-sqlite]

Traffic goes to 127.0.0.1 only, for a bounded time (wrk --seconds per figure).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench_api import get_json, server, wrk
from bench_run import WXHUB, Sample, calibration_s, machine, measure, mysql_url_factory

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "wx_data"
GENERATOR = Path(__file__).resolve().parent / "gen_synthetic.py"
STATION = "USC00110072"
REAL_STATIONS = len(list(DATA.glob("*.txt")))
DEFAULT_CACHE_MB = 32


@dataclass
class Result:
    """What one factor on one backend measured."""

    factor: float
    rows: int = 0
    station_years: int = 0
    ingest: Sample | None = None
    aggregate: Sample | None = None
    size_mb: float = 0.0
    # (request, cache MB) -> (p50 ms, p99 ms)
    latency: dict[tuple[str, int], tuple[float, float]] = field(default_factory=dict)


def synthetic_sources(factor: float, root: Path, seed: int) -> list[str]:
    """The sources of ``factor``: data/wx_data, plus a folder of the first (factor - 1) x 167
    synthetic stations (symbolic links into one generated set, so 3x and 10x share files)."""
    extra = round((factor - 1) * REAL_STATIONS)
    if extra <= 0:
        return [str(DATA)]
    pool = root / f"seed{seed}"
    manifest = pool / "manifest.json"
    have = json.loads(manifest.read_text())["stations"] if manifest.exists() else 0
    if have < extra:
        print(f"generating {extra} synthetic stations into {pool} ...", file=sys.stderr)
        subprocess.run(
            [sys.executable, str(GENERATOR), str(pool), f"--stations={extra}", f"--seed={seed}"],
            check=True,
        )
    view = root / f"seed{seed}-{extra}"
    if not view.exists():
        view.mkdir()
        for path in sorted(pool.glob("SYN*.txt"))[:extra]:
            (view / path.name).symlink_to(path)
    return [str(DATA), str(view)]


def database_size_mb(url: str) -> float:
    """On-disk size: SQLite's file and WAL; InnoDB's data and index pages (fresh statistics)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        files = [path, Path(f"{path}-wal")]
        return sum(p.stat().st_size for p in files if p.exists()) / 2**20
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = conn.execute(
            text("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()")
        ).scalars()
        for table in list(tables):
            conn.execute(text(f"ANALYZE TABLE `{table}`"))
        size = conn.execute(
            text(
                "SELECT SUM(data_length + index_length) FROM information_schema.tables "
                "WHERE table_schema = DATABASE()"
            )
        ).scalar()
    engine.dispose()
    return float(size or 0) / 2**20


def counts(url: str) -> tuple[int, int]:
    """Observation rows and station-years in the database."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT COUNT(*) FROM weather_observations")).scalar()
        years = conn.execute(text("SELECT COUNT(*) FROM weather_yearly_stats")).scalar()
    engine.dispose()
    return int(rows or 0), int(years or 0)


def api_latency(url: str, result: Result, seconds: int) -> None:
    """p50/p99 at one connection of four requests, without and with the answer cache."""
    for cache_mb in (0, DEFAULT_CACHE_MB):
        with server(url, None, 8, cache_mb) as base:
            total = get_json(f"{base}/api/weather")["pagination"]["total"]
            near_end = max(1, total // 100 - 10)
            requests = [
                ("one station, first page", f"/api/weather?station_id={STATION}"),
                ("page jump near the end", f"/api/weather?page={near_end}"),
                ("stats of one station", f"/api/weather/stats?station_id={STATION}"),
                ("station list", "/api/stations"),
            ]
            for name, path in requests:
                p50, p99, _ = wrk(base + path, 1, seconds)
                result.latency[name, cache_mb] = (p50, p99)


def bench_factor(
    url: str, cleanup: Callable[[], None], factor: float, options: argparse.Namespace
) -> Result:
    """Load ``factor`` into the empty database at ``url``, measure, then clean up."""
    result = Result(factor)
    sources = synthetic_sources(factor, options.synthetic_dir, options.seed)
    env = {**os.environ, "DATABASE_URL": url, "WXHUB_LOG_FORMAT": "json"}
    try:
        measure([*WXHUB, "migrate"], env)
        result.ingest = measure([*WXHUB, "ingest", *sources], env)
        result.aggregate = measure([*WXHUB, "aggregate"], env)
        result.rows, result.station_years = counts(url)
        result.size_mb = database_size_mb(url)
        api_latency(url, result, options.seconds)
    finally:
        cleanup()
    return result


def sqlite_factory() -> tuple[str, Callable[[], None]]:
    folder = tempfile.TemporaryDirectory(prefix="wxhub-bench-scale-")
    return f"sqlite:///{Path(folder.name) / 'wxhub.db'}", folder.cleanup


def table(label: str, results: list[Result]) -> str:
    """Markdown: one row per figure, one column per factor, then last/first."""
    header = " | ".join(f"{r.factor:g}x" for r in results)
    lines = [
        f"#### {label}",
        "",
        f"| measurement | {header} | {results[-1].factor:g}x / {results[0].factor:g}x |",
        "| --- |" + " ---: |" * (len(results) + 1),
    ]

    def row(name: str, values: list[float], fmt: str) -> None:
        ratio = values[-1] / values[0] if values[0] else float("nan")
        cells = " | ".join(format(v, fmt) for v in values)
        lines.append(f"| {name} | {cells} | {ratio:.2f} |")

    row("stations", [round(r.factor * REAL_STATIONS) for r in results], ",")
    row("observation rows", [r.rows for r in results], ",")
    row("station-years", [r.station_years for r in results], ",")
    ingests = [r.ingest for r in results if r.ingest]
    aggregates = [r.aggregate for r in results if r.aggregate]
    row("`wxhub ingest` s", [s.seconds for s in ingests], ".1f")
    row(
        "ingest rows/s", [r.rows / s.seconds for r, s in zip(results, ingests, strict=True)], ",.0f"
    )
    row("ingest peak RSS MB", [s.peak_rss_mb for s in ingests], ".0f")
    row("`wxhub aggregate` s", [s.seconds for s in aggregates], ".1f")
    row("aggregate peak RSS MB", [s.peak_rss_mb for s in aggregates], ".0f")
    row("database size MB", [r.size_mb for r in results], ",.0f")
    row("bytes per row", [r.size_mb * 2**20 / max(r.rows, 1) for r in results], ".0f")
    for cache_mb, how in ((0, "built"), (DEFAULT_CACHE_MB, "kept")):
        names = dict.fromkeys(name for name, mb in results[0].latency if mb == cache_mb)
        for name in names:
            for k, percent in enumerate(("p50", "p99")):
                values = [r.latency[name, cache_mb][k] for r in results]
                row(f"{name}, {percent} ms ({how})", values, ".2f")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--factors", default="1,10", help="comma-separated, e.g. 1,3,10")
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per figure")
    parser.add_argument("--seed", type=int, default=1, help="of the synthetic stations")
    parser.add_argument(
        "--synthetic-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "wxhub-scale-synthetic",
        help="where the synthetic stations are written and kept for the next run",
    )
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    parser.add_argument("--skip-mysql", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    options = parser.parse_args()
    factors = sorted(float(f) for f in options.factors.split(","))
    options.synthetic_dir.mkdir(parents=True, exist_ok=True)
    for factor in factors:  # generate first, so generation is never inside a timing
        synthetic_sources(factor, options.synthetic_dir, options.seed)

    started = time.perf_counter()
    calibration_before = calibration_s()
    tables = []
    backends: list[tuple[str, Callable[[], tuple[str, Callable[[], None]]]]] = []
    if not options.skip_sqlite:
        backends.append(("SQLite", sqlite_factory))
    if not options.skip_mysql:
        backends.append(("MariaDB", mysql_url_factory(options.mysql_url)))
    for label, factory in backends:
        results = []
        for factor in factors:
            url, cleanup = factory()
            results.append(bench_factor(url, cleanup, factor, options))
            print(f"{label} {factor:g}x done", file=sys.stderr)
        tables.append(table(f"{label}, wrk {options.seconds} s per latency figure", results))

    print(f"Machine: {machine()}; factors {options.factors}, seed {options.seed}")
    print(
        f"Calibration (10M empty Python loop turns): {calibration_before:.2f} s before, "
        f"{calibration_s():.2f} s after; {time.perf_counter() - started:.0f} s in all\n"
    )
    print("\n\n".join(tables))


if __name__ == "__main__":
    main()
