"""Benchmark the API as it is deployed, beside the least a Python endpoint can do, in one run.

For SQLite and MariaDB: load data/wx_data into a fresh database, start `wxhub serve` and the
bare reference endpoints of ``bench/bare_api.py`` under the same gunicorn configuration, and
measure each request type with wrk (`apt-get install wrk`) on loopback: p50/p99 latency at
one connection and throughput at 16, three times each, reported as medians with their spread
and as ratios wxhub / bare, so the figures hold on any machine.

Two kinds of traffic:

* ``distinct``: every request a different station and start date (or page, or cursor),
  deterministic per seed, with wxhub's answer cache off (``WXHUB_API_CACHE_MB=0``): what
  real traffic costs, which no cache helps;
* ``cached``: one URL asked again and again, the answer cache on (as deployed): what a
  popular page costs.

    python bench/bench_api.py [--seconds 5] [--repeats 3] [--workers N] [--threads 8]
                              [--modes distinct,cached] [--only first,stats] [--skip-mysql]
    python bench/bench_api.py --configs 2x8,2x4,4x2,4x4 --modes distinct  # choose the server

Traffic goes to 127.0.0.1 only, for a bounded time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bench_run import calibration_s
from wxhub.api.pagination import Cursor, encode_cursor
from wxhub.api.server import DEFAULT_THREADS, KEEPALIVE_S, default_workers
from wxhub.db.schema import weather_observations as obs

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "wx_data"
STATION = "USC00110072"
STATIONS = sorted(p.stem for p in DATA.glob("*.txt"))
LAST_PAGE = 17_299  # pages of 100 rows in the 1,729,957-row extract
# Enough distinct paths that no run of wrk asks one twice (about 3x the fastest rate seen).
DISTINCT_PATHS = 60_000

# wrk sends path K*threads + id of the file to thread ``id``: each path once per run.
WRK_SCRIPT = """
local count = 0
function setup(thread)
  thread:set("id", count)
  count = count + 1
end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  step = tonumber(args[2])
  index = id + 1
end
function request()
  local path = paths[index]
  index = index + step
  if index > #paths then index = id + 1 end
  return wrk.format(nil, path)
end
"""


@dataclass(frozen=True)
class RequestType:
    """One request type: its fixed URL for the cached mode, and a maker of distinct pairs
    (wxhub's path, the bare endpoint's path) for the distinct mode."""

    key: str
    name: str
    cached: tuple[str, str]
    distinct: Callable[[random.Random], tuple[str, str]]


@dataclass(frozen=True)
class Universe:
    """What distinct requests are drawn from: the stations, the days, the pages of a data set."""

    stations: tuple[str, ...]
    first_day: dt.date
    days: int
    last_page: int

    @property
    def years(self) -> tuple[int, int]:
        return self.first_day.year, (self.first_day + dt.timedelta(days=self.days - 1)).year


WX_DATA = Universe(tuple(STATIONS), dt.date(1985, 1, 1), 10_957, LAST_PAGE)


def distinct_makers(
    universe: Universe,
) -> dict[str, Callable[[random.Random], tuple[str, str]]]:
    """For each request type, a maker of distinct (wxhub path, bare path) pairs."""
    stations, last_page = universe.stations, universe.last_page
    first_year, last_year = universe.years

    def day(rng: random.Random) -> dt.date:
        return universe.first_day + dt.timedelta(days=rng.randrange(universe.days))

    def first(rng: random.Random) -> tuple[str, str]:
        query = f"station_id={rng.choice(stations)}&start_date={day(rng)}"
        return f"/api/weather?{query}", f"/bare/first?{query}"

    def year(rng: random.Random) -> tuple[str, str]:
        station, start = rng.choice(stations), day(rng)
        query = f"station_id={station}&start_date={start}&end_date={start.year}-12-31"
        return f"/api/weather?{query}", f"/bare/year?{query}"

    def after(rng: random.Random) -> tuple[str, str]:
        station, start = rng.choice(stations), day(rng)
        cursor = encode_cursor(Cursor((station, start), True, rng.randint(2, last_page)), {})
        return f"/api/weather?cursor={cursor}", f"/bare/after?station_id={station}&date={start}"

    def jump(rng: random.Random) -> tuple[str, str]:
        page = rng.randint(1, last_page)
        return f"/api/weather?page={page}", f"/bare/offset?page={page}"

    def stats(rng: random.Random) -> tuple[str, str]:
        start_year = rng.randint(first_year, last_year)
        query = f"station_id={rng.choice(stations)}&start_year={start_year}"
        return f"/api/weather/stats?{query}", f"/bare/stats?{query}"

    def station_list(rng: random.Random) -> tuple[str, str]:
        size = rng.randint(1, 100)
        query = f"page_size={size}&page={rng.randint(1, -(-len(stations) // size))}"
        return f"/api/stations?{query}", f"/bare/stations?{query}"

    return {
        "first": first,
        "year": year,
        "after": after,
        "jump": jump,
        "stats": stats,
        "stations": station_list,
    }


_WX = distinct_makers(WX_DATA)
REQUEST_TYPES = (
    RequestType(
        "first",
        "one station, first page",
        (
            f"/api/weather?station_id={STATION}",
            f"/bare/first?station_id={STATION}&start_date=1900-01-01",
        ),
        _WX["first"],
    ),
    RequestType(
        "year",
        "one station, one year",
        (
            f"/api/weather?station_id={STATION}&start_date=1985-01-01&end_date=1985-12-31",
            f"/bare/year?station_id={STATION}&start_date=1985-01-01&end_date=1985-12-31",
        ),
        _WX["year"],
    ),
    RequestType(
        "after",
        "a next link (cursor)",
        (
            "/api/weather?cursor="
            + encode_cursor(Cursor(("USW00094846", dt.date(2014, 9, 1)), True, 17290), {}),
            "/bare/after?station_id=USW00094846&date=2014-09-01",
        ),
        _WX["after"],
    ),
    RequestType(
        "jump",
        "page=N (a jump; bare: OFFSET)",
        ("/api/weather?page=17000", "/bare/offset?page=17000"),
        _WX["jump"],
    ),
    RequestType(
        "stats",
        "stats of one station",
        (f"/api/weather/stats?station_id={STATION}", f"/bare/stats?station_id={STATION}"),
        _WX["stats"],
    ),
    RequestType(
        "stations",
        "station list",
        ("/api/stations", "/bare/stations"),
        _WX["stations"],
    ),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):  # noqa: S310  (loopback)  # nosec B310
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"no answer from {url} in 60 s")


@contextmanager
def serving(args: list[str], env: dict[str, str], ready_path: str, port: int) -> Iterator[str]:
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base + ready_path, process)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def wxhub_server(
    database_url: str, workers: int, threads: int, cache_mb: int
) -> AbstractContextManager[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WXHUB_LOG_FORMAT": "json",
        "WXHUB_API_CACHE_MB": str(cache_mb),
    }
    args = [sys.executable, "-m", "wxhub.cli", "serve", "--port", str(port)]
    args += ["--threads", str(threads), "--workers", str(workers)]
    return serving(args, env, "/readyz", port)


def bare_server(
    database_url: str, workers: int, threads: int, module: str = "bare_api"
) -> AbstractContextManager[str]:
    """The reference endpoints (``bare_api``, or the framework's floor ``floor_api``) under
    the options ``wxhub serve`` gives gunicorn."""
    port = free_port()
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        bare_url = f"sqlite:///{url.database}"
    else:
        login = f"{url.username}:{url.password or ''}"
        bare_url = f"mysql://{login}@{url.host}:{url.port or 3306}/{url.database}"
    args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers"]
    args += [str(workers), "--worker-class", "gthread", "--threads", str(threads)]
    args += ["--keep-alive", str(KEEPALIVE_S), "--chdir", str(REPO / "bench"), f"{module}:app"]
    env = {**os.environ, "BARE_DATABASE_URL": bare_url}
    return serving(args, env, "/bare/stations?page_size=1", port)


@dataclass(frozen=True)
class Figures:
    p50: float
    p99: float
    rate: float


def wrk(url: str, connections: int, seconds: int, paths: Path | None) -> Figures:
    """(p50 ms, p99 ms, requests/s) for ``url``, or for each path of ``paths`` once."""
    threads = min(connections, 2)
    # The OFFSET references take a second a page on a slow host at 16 connections: wrk's
    # default 2 s timeout would count them as errors rather than measure them.
    args = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "30s",
    ]
    if paths is not None:
        script = paths.with_suffix(".lua")
        script.write_text(WRK_SCRIPT)
        args += ["-s", str(script), url, "--", str(paths), str(threads)]
    else:
        args.append(url)
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses|Socket errors", out):
        raise SystemExit(f"errors from {url}:\n{out}")

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(\w+)", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return Figures(latency("50"), latency("99"), rate)


def median_ms(action: Callable[[], object], repeat: int = 7) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def offset_alternative(database_url: str) -> list[tuple[str, float]]:
    """The common way: COUNT(*) for the total, then LIMIT/OFFSET, timed as SQL."""
    engine = create_engine(database_url)
    results = []
    with engine.connect() as conn:

        def page(offset: int) -> None:
            conn.execute(select(func.count()).select_from(obs)).scalar()
            conn.execute(
                select(obs).order_by(obs.c.station_id, obs.c.obs_date).limit(100).offset(offset)
            ).all()

        results.append(("COUNT(*) + OFFSET, first page", median_ms(lambda: page(0))))
        results.append(("COUNT(*) + OFFSET, page 17,000", median_ms(lambda: page(1_699_900))))
    engine.dispose()
    return results


class Distinct:
    """Files of distinct paths, a fresh one for every wrk run (seeded by run number)."""

    def __init__(self, folder: Path, seed: int) -> None:
        self.folder, self.seed, self.runs = folder, seed, 0

    def files(self, kind: RequestType) -> tuple[Path, Path]:
        self.runs += 1
        rng = random.Random(f"{self.seed}-{kind.key}-{self.runs}")  # noqa: S311  (reproducible)
        pairs = [kind.distinct(rng) for _ in range(DISTINCT_PATHS)]
        ours = self.folder / f"{kind.key}-{self.runs}-wxhub.txt"
        bare = self.folder / f"{kind.key}-{self.runs}-bare.txt"
        ours.write_text("".join(f"{a}\n" for a, _ in pairs))
        bare.write_text("".join(f"{b}\n" for _, b in pairs))
        return ours, bare


def measure(
    bases: dict[str, str],
    kind: RequestType,
    *,
    mode: str,
    options: argparse.Namespace,
    distinct: Distinct,
) -> dict[str, list[Figures]]:
    """Each repeat: every server (wxhub, the bare endpoint, the framework's floor when
    served) at c=1, then each at c=16, interleaved so that a drift of the machine touches
    all sides alike. The floor answers the bare endpoint's paths."""
    figures: dict[str, list[Figures]] = {side: [] for side in bases}
    for _ in range(options.repeats):
        runs: dict[str, list[Figures]] = {side: [] for side in bases}
        for connections in (1, 16):
            targets: dict[str, tuple[str, Path | None]]
            if mode == "distinct":
                ours_paths, bare_paths = distinct.files(kind)
                targets = {side: (base + "/", bare_paths) for side, base in bases.items()}
                targets["ours"] = (bases["ours"] + "/", ours_paths)
            else:
                targets = {side: (base + kind.cached[1], None) for side, base in bases.items()}
                targets["ours"] = (bases["ours"] + kind.cached[0], None)
            for side, (url, paths) in targets.items():
                runs[side].append(wrk(url, connections, options.seconds, paths))
        for side, (c1, c16) in runs.items():
            figures[side].append(Figures(c1.p50, c1.p99, c16.rate))
    return figures


def spread(values: list[float]) -> str:
    """(max - min) / median, in percent: how far three repeats are from each other."""
    middle = statistics.median(values)
    return f"{100 * (max(values) - min(values)) / middle:.0f}%" if middle else "-"


def table(
    label: str,
    mode: str,
    rows: list[tuple[RequestType, dict[str, list[Figures]]]],
    config: str,
    options: argparse.Namespace,
) -> None:
    kept = (
        "answer cache on, one URL repeated"
        if mode == "cached"
        else "answer cache off, every request distinct"
    )
    print(
        f"\n### {label}, {mode}: {kept} ({config}, wrk {options.seconds} s per figure, "
        f"median of {options.repeats} with spread, calibration {calibration_s():.2f} s)\n"
    )
    print(
        "| request | wxhub p50 ms | bare p50 ms | p50 ratio | wxhub p99 ms | bare p99 ms "
        "| wxhub req/s (c=16) | bare req/s | req/s ratio |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    medians: list[tuple[RequestType, dict[str, list[Figures]], dict[str, dict[str, float]]]] = []
    for kind, figures in rows:
        med = {
            side: {
                f: statistics.median(getattr(x, f) for x in figs) for f in ("p50", "p99", "rate")
            }
            for side, figs in figures.items()
        }
        medians.append((kind, figures, med))
        ours, bare = figures["ours"], figures["bare"]
        print(
            f"| {kind.name} "
            f"| {med['ours']['p50']:.2f} ±{spread([x.p50 for x in ours])} "
            f"| {med['bare']['p50']:.2f} "
            f"| **{med['ours']['p50'] / med['bare']['p50']:.2f}x** "
            f"| {med['ours']['p99']:.2f} | {med['bare']['p99']:.2f} "
            f"| {med['ours']['rate']:.0f} ±{spread([x.rate for x in ours])} "
            f"| {med['bare']['rate']:.0f} ±{spread([x.rate for x in bare])} "
            f"| **{med['ours']['rate'] / med['bare']['rate']:.2f}x** |"
        )
    if not any("floor" in figures for _, figures in rows):
        return
    print(
        f"\n#### {label}, {mode}: against the framework's floor (floor_api.py: the bare work "
        "behind Flask and flask-openapi3 validating wxhub's parameter models)\n"
    )
    print(
        "| request | floor p50 ms | wxhub / floor p50 | floor / bare p50 | floor req/s (c=16) "
        "| wxhub / floor req/s | floor / bare req/s |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for kind, figures, med in medians:
        wx, floor, bare_med = med["ours"], med["floor"], med["bare"]
        print(
            f"| {kind.name} "
            f"| {floor['p50']:.2f} ±{spread([x.p50 for x in figures['floor']])} "
            f"| **{wx['p50'] / floor['p50']:.2f}x** | {floor['p50'] / bare_med['p50']:.2f}x "
            f"| {floor['rate']:.0f} ±{spread([x.rate for x in figures['floor']])} "
            f"| **{wx['rate'] / floor['rate']:.2f}x** | {floor['rate'] / bare_med['rate']:.2f}x |"
        )


def bench_backend(label: str, database_url: str, options: argparse.Namespace) -> None:
    load(database_url)
    kinds = [k for k in REQUEST_TYPES if not options.only or k.key in options.only]
    with tempfile.TemporaryDirectory(prefix="wxhub-bench-paths-") as folder:
        distinct = Distinct(Path(folder), options.seed)
        for workers, threads in options.configs:
            config = f"{workers} workers x {threads} threads, keep-alive {KEEPALIVE_S} s"
            for mode in options.modes:
                cache_mb = 32 if mode == "cached" else 0
                with ExitStack() as servers:
                    bases = {
                        "ours": servers.enter_context(
                            wxhub_server(database_url, workers, threads, cache_mb)
                        ),
                        "bare": servers.enter_context(bare_server(database_url, workers, threads)),
                    }
                    if mode == "distinct" and not options.no_floor:
                        bases["floor"] = servers.enter_context(
                            bare_server(database_url, workers, threads, "floor_api")
                        )
                    rows = [
                        (
                            kind,
                            measure(bases, kind, mode=mode, options=options, distinct=distinct),
                        )
                        for kind in kinds
                    ]
                table(label, mode, rows, config, options)
    if not options.no_offset:
        print("\nThe common alternative, as SQL on the same database (median of 7):\n")
        for name, ms in offset_alternative(database_url):
            print(f"- {name}: {ms:.1f} ms")


def load(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "WXHUB_LOG_FORMAT": "json"}
    subprocess.run(
        [sys.executable, "-m", "wxhub.cli", "run", str(DATA)],
        env=env,
        stdout=subprocess.DEVNULL,
        check=True,
    )


def _configs(value: str) -> list[tuple[int, int]]:
    return [tuple(int(n) for n in item.split("x")) for item in value.split(",")]  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--workers", type=int, default=default_workers())
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
    parser.add_argument(
        "--configs", type=_configs, default=None, help="WORKERSxTHREADS,...: a sweep"
    )
    parser.add_argument("--modes", default="distinct,cached", type=lambda v: v.split(","))
    parser.add_argument("--only", default=None, type=lambda v: v.split(","))
    parser.add_argument("--no-offset", action="store_true", help="skip the OFFSET SQL timing")
    parser.add_argument(
        "--no-floor", action="store_true", help="distinct mode without the framework's floor"
    )
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--skip-mysql", action="store_true")
    options = parser.parse_args()
    options.configs = options.configs or [(options.workers, options.threads)]

    if not options.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="wxhub-bench-api-") as folder:
            url = f"sqlite:///{Path(folder) / 'wxhub.db'}"
            bench_backend("SQLite", url, options)
    if options.skip_mysql:
        return
    server_url = make_url(options.mysql_url)
    name = f"wxhub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        url = server_url.set(database=name).render_as_string(hide_password=False)
        bench_backend("MariaDB", url, options)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE {name}"))


if __name__ == "__main__":
    main()
