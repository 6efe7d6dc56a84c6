"""Benchmark how wxhub grows with the data: GHCN-Daily csv.gz by-station files into MariaDB,
from 1x (167 stations, about 1.7 million station-days) to 100x (16,700 stations, about 170
million station-days), plus shards loading side by side.

The data: factor F is the first F x 167 synthetic stations ``SYN00000001`` ... of one seed,
each a by-station ``ID.csv.gz`` in NOAA's CSV layout with the noise real files carry (other
elements, M/Q/S flags, observation times, a header on about half the files): the days come
from bench/gen_synthetic.py (the statistical shape of data/wx_data: spans, gaps, seasons, wet
spells, missing episodes), the GHCN noise from bench/gen_ghcn.py. Deterministic per seed;
written once under ``--data-dir`` (resumable: a file appears only when complete) and shared by
the factors (10x holds 1x's stations). Nothing is generated inside a timing.

For each factor, on a fresh MariaDB database (``wxhub_bench_*``, dropped after):

- ``wxhub migrate``, ``wxhub ingest FOLDER`` and ``wxhub aggregate`` as the real commands in
  subprocesses: wall time, rows per second, peak resident memory of the process tree;
- the database size: InnoDB's data and index pages after ANALYZE TABLE;
- ``wxhub serve`` with the answer cache off, and the bare endpoints of bench/bare_api.py,
  under the same gunicorn configuration: p50/p99 at one connection of every request type of
  bench/bench_api.py, each request distinct (a station, start date, cursor or page drawn from
  this factor's data, deterministic per seed). The bare OFFSET of a page jump is not run past
  1x: it reads every row before the page (minutes at 100x), which is the point of wxhub's jumps;
- the nightly increment: the by-year file of the current year (2015, every station, in no
  order) as it stands on day ``--day`` is loaded once by ``wxhub run`` (untimed set-up: the
  previous nights), then replaced by the file of the next day (the same lines and one new day
  for every station, as NOAA's file grows) and ``wxhub run`` timed on it: what one night costs.

Then, with ``--shards 1,2,4`` (at ``--shard-factor``, default the largest factor up to 10):
N ``wxhub ingest --shard K/N`` processes side by side into one fresh database, each with one
parser process as the ECS task has; the database's rows per second as a whole.

    python bench/bench_scale.py --factors 1,10,100 --shards 1,2,4 [--buffer-pool-mb 8192]
    python bench/bench_scale.py --factors 1 --shards 1,2 --seconds 1   # the CI smoke

``--buffer-pool-mb`` sets the server's InnoDB buffer pool for the run (it is restored after),
so the database is sized like the deployment's (RDS gives InnoDB 3/4 of the instance's memory)
rather than like a developer's default (128 MB). Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

import gen_ghcn
import gen_synthetic
from bench_api import (
    Figures,
    Universe,
    bare_server,
    distinct_makers,
    wrk,
    wxhub_server,
)
from bench_run import (
    WXHUB,
    Sample,
    _tree_rss_kb,
    calibration_s,
    fresh_mysql_database,
    machine,
    measure,
)

REPO = Path(__file__).resolve().parent.parent
BASE_STATIONS = 167  # the stations of data/wx_data: 1x
SAMPLE_INTERVAL_S = 0.05
YEAR = 2015  # the "current" year of the nightly increment: the data's history ends in 2014
REQUESTS = ("first", "year", "after", "jump", "stats", "stations")
REQUEST_NAMES = {
    "first": "one station, first page",
    "year": "one station, one year",
    "after": "a next link (cursor)",
    "jump": "page=N (a jump)",
    "stats": "stats of one station",
    "stations": "station list",
}


# --- The data ------------------------------------------------------------------------------


def station_count(factor: float) -> int:
    return max(1, round(factor * BASE_STATIONS))


def _days(number: int, seed: int, profile: gen_synthetic.Profile) -> list[gen_ghcn.Day]:
    days = []
    for month in gen_synthetic.station_lines(number, seed, profile):
        for line in month.splitlines():
            date, tmax, tmin, prcp = line.split("\t")
            days.append((date, int(tmax), int(tmin), int(prcp)))
    return days


_PROFILE: gen_synthetic.Profile | None = None


def _init_worker(profile: gen_synthetic.Profile) -> None:
    global _PROFILE  # noqa: PLW0603  (sent once to each worker process, not once per file)
    _PROFILE = profile


def _write_station(task: tuple[Path, int, int]) -> int:
    """One synthetic station as its by-station csv.gz file; returns its station-days."""
    assert _PROFILE is not None
    folder, number, seed = task
    days = _days(number, seed, _PROFILE)
    station_id = gen_synthetic.station_id(number)
    gen_ghcn.write_station(
        folder / f"{station_id}.csv.gz",
        station_id,
        days,
        seed=seed,
        qc_rate=0.001,
        tally=gen_ghcn.Tally(),
    )
    return len(days)


def by_station_files(root: Path, stations: int, seed: int, jobs: int) -> Path:
    """A folder of the first ``stations`` stations' files (links into one pool per seed)."""
    pool = root / f"seed{seed}"
    pool.mkdir(parents=True, exist_ok=True)
    missing = [
        n
        for n in range(1, stations + 1)
        if not (pool / f"{gen_synthetic.station_id(n)}.csv.gz").exists()
    ]
    if missing:
        print(f"writing {len(missing):,} stations into {pool} ...", file=sys.stderr)
        started = time.perf_counter()
        profile = gen_synthetic.learn(gen_synthetic.real_files())
        tasks = [(pool, n, seed) for n in missing]
        context = multiprocessing.get_context("fork")
        with context.Pool(jobs, initializer=_init_worker, initargs=(profile,)) as workers:
            for done, _ in enumerate(workers.imap_unordered(_write_station, tasks, 4), 1):
                if done % 1000 == 0:
                    print(f"  {done:,} / {len(missing):,}", file=sys.stderr)
        print(f"  done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    view = root / f"seed{seed}-{stations}"
    if not view.exists():
        part = view.with_name(view.name + ".part")
        shutil.rmtree(part, ignore_errors=True)
        part.mkdir()
        for n in range(1, stations + 1):
            name = f"{gen_synthetic.station_id(n)}.csv.gz"
            (part / name).symlink_to(pool / name)
        part.rename(view)
    return view


def nightly_files(root: Path, stations: int, seed: int, day: int) -> tuple[Path, Path]:
    """The current year's by-year file on night ``day`` and on the night after."""
    ids = [gen_synthetic.station_id(n) for n in range(1, stations + 1)]
    folder = root / f"seed{seed}-{stations}-by-year"
    paths = []
    for last_day in (day, day + 1):
        path = folder / f"day{last_day}" / f"{YEAR}.csv.gz"
        if not path.exists():
            gen_ghcn.synthetic_by_year(
                path, year=YEAR, stations=stations, seed=seed, gz=True, ids=ids, last_day=last_day
            )
        paths.append(path)
    return paths[0], paths[1]


# --- The database --------------------------------------------------------------------------


@contextlib.contextmanager
def buffer_pool(server: URL, megabytes: int | None) -> Iterator[int]:
    """The server's InnoDB buffer pool set to ``megabytes`` for the run, then restored."""
    admin = create_engine(server)
    with admin.connect() as conn:
        before = int(conn.execute(text("SELECT @@innodb_buffer_pool_size")).scalar() or 0)
        if megabytes:
            conn.execute(text(f"SET GLOBAL innodb_buffer_pool_size = {megabytes * 2**20}"))
        now = int(conn.execute(text("SELECT @@innodb_buffer_pool_size")).scalar() or 0)
    try:
        yield now // 2**20
    finally:
        if megabytes:
            with admin.connect() as conn:
                conn.execute(text(f"SET GLOBAL innodb_buffer_pool_size = {before}"))
        admin.dispose()


def size_mb(url: str) -> float:
    """InnoDB's data and index pages of the database, from fresh statistics."""
    engine = create_engine(url)
    with engine.connect() as conn:
        tables = list(
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = DATABASE()"
                )
            ).scalars()
        )
        for table in tables:
            conn.execute(text(f"ANALYZE TABLE `{table}`"))
        size = conn.execute(
            text(
                "SELECT SUM(data_length + index_length) FROM information_schema.tables "
                "WHERE table_schema = DATABASE()"
            )
        ).scalar()
    engine.dispose()
    return float(size or 0) / 2**20


def universe_of(url: str) -> tuple[Universe, int, int]:
    """The request universe of the loaded data, its rows and its station-years."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = int(conn.execute(text("SELECT COUNT(*) FROM weather_observations")).scalar() or 0)
        years = int(conn.execute(text("SELECT COUNT(*) FROM weather_yearly_stats")).scalar() or 0)
        stations = tuple(
            conn.execute(
                text("SELECT DISTINCT station_id FROM weather_yearly_stats ORDER BY 1")
            ).scalars()
        )
        first, last = conn.execute(
            text("SELECT MIN(year), MAX(year) FROM weather_yearly_stats")
        ).one()
    engine.dispose()
    first_day = dt.date(int(first), 1, 1)
    days = (dt.date(int(last), 12, 31) - first_day).days + 1
    return Universe(stations, first_day, days, max(2, rows // 100)), rows, years


# --- Measurements --------------------------------------------------------------------------


def server_cpu_s() -> float:
    """CPU seconds the local MariaDB server has used so far (user + system), from /proc: the
    database's own share of a load, which sizes a database instance's vCPUs."""
    pids = subprocess.run(
        ["pidof", "mariadbd", "mysqld"], capture_output=True, text=True, check=False
    )
    total = 0.0
    for pid in pids.stdout.split():
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children and theirs (the loaders, their parser
    processes): what a loader costs, which sizes a Fargate task's vCPUs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def cpu_use() -> Iterator[dict[str, float]]:
    """CPU seconds of the loaders and of the database server during the block."""
    used: dict[str, float] = {}
    loaders, server = children_cpu_s(), server_cpu_s()
    yield used
    used["loaders"] = children_cpu_s() - loaders
    used["database"] = server_cpu_s() - server


@dataclass
class Result:
    """What one factor measured."""

    factor: float
    stations: int = 0
    rows: int = 0
    station_years: int = 0
    ingest: Sample | None = None
    ingest_cpu: dict[str, float] = field(default_factory=dict)
    aggregate: Sample | None = None
    size_mb: float = 0.0
    night: Sample | None = None
    night_lines: int = 0
    latency: dict[str, tuple[Figures, Figures | None]] = field(default_factory=dict)


def api_latency(
    url: str, universe: Universe, factor: float, options: argparse.Namespace
) -> dict[str, tuple[Figures, Figures | None]]:
    """p50/p99 at one connection of each request type, distinct requests, cache off."""
    makers = distinct_makers(universe)
    figures: dict[str, tuple[Figures, Figures | None]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="wxhub-bench-paths-") as folder,
        wxhub_server(url, options.workers, options.threads, 0) as ours,
        bare_server(url, options.workers, options.threads) as bare,
    ):
        for key in REQUESTS:
            rng = random.Random(f"{options.seed}-{key}-{factor}")  # noqa: S311  (reproducible)
            pairs = [makers[key](rng) for _ in range(20_000)]
            ours_paths, bare_paths = (
                Path(folder, f"{key}-ours.txt"),
                Path(folder, f"{key}-bare.txt"),
            )
            ours_paths.write_text("".join(f"{a}\n" for a, _ in pairs))
            bare_paths.write_text("".join(f"{b}\n" for _, b in pairs))
            wxhub = wrk(ours + "/", 1, options.seconds, ours_paths)
            reference = None
            if key != "jump" or factor <= 1:
                reference = wrk(bare + "/", 1, options.seconds, bare_paths)
            figures[key] = (wxhub, reference)
    return figures


def bench_factor(server: URL, factor: float, options: argparse.Namespace) -> Result:
    result = Result(factor, stations=station_count(factor))
    folder = by_station_files(options.data_dir, result.stations, options.seed, options.jobs)
    night0, night1 = nightly_files(options.data_dir, result.stations, options.seed, options.day)
    with fresh_mysql_database(server) as url, tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "DATABASE_URL": url, "WXHUB_LOG_FORMAT": "json"}
        measure([*WXHUB, "migrate"], env)
        with cpu_use() as result.ingest_cpu:
            result.ingest = measure([*WXHUB, "ingest", str(folder)], env)
        result.aggregate = measure([*WXHUB, "aggregate"], env)
        print(f"  {factor:g}x loaded: {result.ingest.seconds:.0f} s", file=sys.stderr)
        result.size_mb = size_mb(url)
        universe, result.rows, result.station_years = universe_of(url)
        result.latency = api_latency(url, universe, factor, options)
        # The nightly increment: yesterday's file is in; tonight's replaces it, same name.
        current = Path(scratch, f"{YEAR}.csv.gz")
        shutil.copyfile(night0, current)
        measure([*WXHUB, "run", str(current)], env)
        shutil.copyfile(night1, current)
        result.night = measure([*WXHUB, "run", str(current)], env)
        with gen_ghcn._input(night1) as lines:
            result.night_lines = sum(1 for _ in lines)
    return result


@dataclass
class ShardRun:
    shards: int
    seconds: float
    rows: int
    peak_rss_mb: float
    cpu: dict[str, float]


def bench_shards(server: URL, factor: float, shards: int, options: argparse.Namespace) -> ShardRun:
    """``shards`` ingest processes side by side into one fresh database."""
    folder = by_station_files(options.data_dir, station_count(factor), options.seed, options.jobs)
    with fresh_mysql_database(server) as url:
        env = {**os.environ, "DATABASE_URL": url, "WXHUB_LOG_FORMAT": "json"}
        measure([*WXHUB, "migrate"], env)
        with cpu_use() as cpu:
            seconds, peak = run_side_by_side(
                [
                    [*WXHUB, "ingest", "--shard", f"{k}/{shards}", "--workers", "1", str(folder)]
                    for k in range(1, shards + 1)
                ],
                env,
            )
        engine = create_engine(url)
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT COUNT(*) FROM weather_observations")).scalar_one()
        engine.dispose()
    return ShardRun(shards, seconds, rows, peak / 1024, cpu)


def run_side_by_side(commands: list[list[str]], env: dict[str, str]) -> tuple[float, int]:
    """Run ``commands`` at once; the wall time until the last ends, and the peak of their
    resident memory together (KB)."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, cwd=REPO)
        for command in commands
    ]
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, sum(_tree_rss_kb(p.pid) for p in processes))
            time.sleep(SAMPLE_INTERVAL_S)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    codes = [p.wait() for p in processes]
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    if any(codes):
        raise SystemExit(f"side by side, {len(commands)} commands exited {codes}")
    return seconds, peak


# --- Report --------------------------------------------------------------------------------


def growth_table(results: list[Result]) -> str:
    first, last = results[0], results[-1]
    header = " | ".join(f"{r.factor:g}x" for r in results)
    lines = [
        f"| measurement | {header} | {last.factor:g}x / {first.factor:g}x |",
        "| --- |" + " ---: |" * (len(results) + 1),
    ]

    def row(name: str, values: list[float], fmt: str) -> None:
        ratio = values[-1] / values[0] if values[0] else float("nan")
        cells = " | ".join(format(v, fmt) for v in values)
        lines.append(f"| {name} | {cells} | {ratio:.2f} |")

    def sample(r: Result, name: str) -> Sample:
        value: Sample | None = getattr(r, name)
        assert value is not None
        return value

    row("stations", [r.stations for r in results], ",")
    row("observation rows (station-days)", [r.rows for r in results], ",")
    row("station-years", [r.station_years for r in results], ",")
    row("`wxhub ingest` s", [sample(r, "ingest").seconds for r in results], ",.1f")
    row("load rows/s", [r.rows / sample(r, "ingest").seconds for r in results], ",.0f")
    row("ingest peak RSS MB", [sample(r, "ingest").peak_rss_mb for r in results], ".0f")
    per_million = [(r.ingest_cpu, r.rows / 1e6) for r in results]
    row("loader CPU s per million rows", [c["loaders"] / m for c, m in per_million], ".2f")
    row("database CPU s per million rows", [c["database"] / m for c, m in per_million], ".2f")
    row("`wxhub aggregate` s", [sample(r, "aggregate").seconds for r in results], ",.1f")
    row("aggregate peak RSS MB", [sample(r, "aggregate").peak_rss_mb for r in results], ".0f")
    row("database size MB", [r.size_mb for r in results], ",.0f")
    row("bytes per row", [r.size_mb * 2**20 / max(r.rows, 1) for r in results], ".0f")
    for key in REQUESTS:
        for percent in ("p50", "p99"):
            values = [getattr(r.latency[key][0], percent) for r in results]
            row(f"{REQUEST_NAMES[key]}, {percent} ms", values, ".2f")
        bares = [r.latency[key][1] for r in results]
        if all(bares):
            row("  (bare endpoint, p50 ms)", [b.p50 for b in bares if b], ".2f")
    row("nightly by-year file, lines", [r.night_lines for r in results], ",")
    row("nightly increment (`wxhub run`) s", [sample(r, "night").seconds for r in results], ".2f")
    row(
        "nightly increment ms per station",
        [1000 * sample(r, "night").seconds / r.stations for r in results],
        ".3f",
    )
    row("nightly increment peak RSS MB", [sample(r, "night").peak_rss_mb for r in results], ".0f")
    return "\n".join(lines)


def shard_table(runs: list[ShardRun], factor: float) -> str:
    base = runs[0].rows / runs[0].seconds
    lines = [
        f"| shards side by side ({factor:g}x) | wall s | rows | rows/s of the database "
        "| vs 1 shard | peak RSS MB (all) | loader CPU s / M rows | database CPU s / M rows "
        "| cores busy |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in runs:
        rate = run.rows / run.seconds
        million = run.rows / 1e6
        busy = (run.cpu["loaders"] + run.cpu["database"]) / run.seconds
        lines.append(
            f"| {run.shards} | {run.seconds:,.1f} | {run.rows:,} | {rate:,.0f} "
            f"| {rate / base:.2f}x | {run.peak_rss_mb:.0f} | {run.cpu['loaders'] / million:.2f} "
            f"| {run.cpu['database'] / million:.2f} | {busy:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--factors", default="1,10", help="comma-separated, e.g. 1,10,100")
    parser.add_argument("--shards", default="1,2,4", help="shard counts; empty: none")
    parser.add_argument("--shard-factor", type=float, default=None)
    parser.add_argument("--seconds", type=int, default=5, help="wrk duration per figure")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--day", type=int, default=181, help="the night of the year measured")
    parser.add_argument("--workers", type=int, default=2, help="API: gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="API: threads per worker")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="generators")
    parser.add_argument("--buffer-pool-mb", type=int, default=None)
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "wxhub-scale-ghcn",
        help="where the generated files are written and kept for the next run",
    )
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    options = parser.parse_args()
    factors = sorted(float(f) for f in options.factors.split(","))
    shard_counts = [int(n) for n in options.shards.split(",") if n]
    shard_factor = options.shard_factor or max([f for f in factors if f <= 10] or [factors[0]])
    for factor in sorted({*factors, shard_factor}):  # generate first, never inside a timing
        stations = station_count(factor)
        by_station_files(options.data_dir, stations, options.seed, options.jobs)
        if factor in factors:
            nightly_files(options.data_dir, stations, options.seed, options.day)

    server = make_url(options.mysql_url)
    started = time.perf_counter()
    calibration_before = calibration_s()
    with buffer_pool(server, options.buffer_pool_mb) as pool_mb:
        results = []
        for factor in factors:
            results.append(bench_factor(server, factor, options))
            # Each figure as soon as it is known: a failure later in a long run loses nothing.
            print(f"{factor:g}x done: {json.dumps(asdict(results[-1]))}", file=sys.stderr)
        shard_runs = []
        for count in shard_counts:
            shard_runs.append(bench_shards(server, shard_factor, count, options))
            print(f"shards: {json.dumps(asdict(shard_runs[-1]))}", file=sys.stderr)

    print(f"Machine: {machine()}; MariaDB InnoDB buffer pool {pool_mb:,} MB; seed {options.seed}")
    print(
        f"Calibration (10M empty Python loop turns): {calibration_before:.2f} s before, "
        f"{calibration_s():.2f} s after; {time.perf_counter() - started:,.0f} s in all; "
        f"API {options.workers} workers x {options.threads} threads, wrk {options.seconds} s "
        f"per figure at 1 connection, every request distinct, answer cache off\n"
    )
    print(growth_table(results))
    if shard_runs:
        print()
        print(shard_table(shard_runs, shard_factor))
    if len(results) > 1:
        print()
        goals(results)


def goals(results: list[Result]) -> None:
    """The issue's goals, as ratios of this run's own figures."""
    first, last = results[0], results[-1]
    assert first.ingest
    assert last.ingest
    load = (last.rows / last.ingest.seconds) / (first.rows / first.ingest.seconds)
    print(f"- load rows/s at {last.factor:g}x / {first.factor:g}x: {load:.2f} (goal >= 0.8)")
    p50s = [last.latency[key][0].p50 / first.latency[key][0].p50 for key in REQUESTS]
    print(
        f"- API p50 at {last.factor:g}x / {first.factor:g}x: "
        + ", ".join(f"{k} {r:.2f}" for k, r in zip(REQUESTS, p50s, strict=True))
        + f" (goal <= 1.3; median {statistics.median(p50s):.2f})"
    )
    if len(results) >= 2:
        a, b = results[-2], results[-1]
        assert a.night
        assert b.night
        per_station = (b.night.seconds / b.stations) / (a.night.seconds / a.stations)
        print(
            f"- nightly increment per station at {b.factor:g}x / {a.factor:g}x: "
            f"{per_station:.2f} (goal <= 1.5); whole night {b.night.seconds / a.night.seconds:.2f}"
            f" for {b.stations / a.stations:.0f}x the stations"
        )


if __name__ == "__main__":
    main()
