"""Benchmark the main job as a user runs it: `wxhub run data/wx_data`, a full run into an empty
database and a re-run with nothing changed, on SQLite and on MariaDB/MySQL.

Each measurement runs the real command in a subprocess, times it wall-clock, and samples the
resident memory of the whole process tree (the job and its parser worker) every 50 ms. Results
go to stdout as a Markdown table; docs/benchmarks.md records them with the machine.

    python bench/bench_run.py [--repeat 3] [--mysql-url mysql+pymysql://root@127.0.0.1:3306/]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, make_url

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "wx_data"
WXHUB = [sys.executable, "-m", "wxhub.cli"]
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
SAMPLE_INTERVAL_S = 0.05


@dataclass
class Sample:
    seconds: float
    peak_rss_mb: float


def _tree_rss_kb(root: int) -> int:
    """Resident memory of ``root`` and its descendants, walking /proc's children lists only
    (a scan of all of /proc every sample would itself load the 2-core machine)."""
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        try:
            with open(f"/proc/{pid}/task/{pid}/children") as children:
                stack.extend(int(child) for child in children.read().split())
            with open(f"/proc/{pid}/statm") as statm:
                total += int(statm.read().split()[1]) * PAGE_KB
        except OSError:
            continue
    return total


def measure(args: list[str], env: dict[str, str]) -> Sample:
    started = time.perf_counter()
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, cwd=REPO)
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
    if code != 0:
        raise SystemExit(f"{' '.join(args)} exited {code}")
    return Sample(elapsed, peak / 1024)


Factory = Callable[[], tuple[str, Callable[[], None]]]


def bench_backend(
    name: str, make_url_for_run: Factory, repeat: int
) -> list[tuple[str, list[Sample]]]:
    full: list[Sample] = []
    rerun: list[Sample] = []
    for _ in range(repeat):
        url, cleanup = make_url_for_run()
        env = {**os.environ, "DATABASE_URL": url, "WXHUB_LOG_FORMAT": "json"}
        try:
            full.append(measure([*WXHUB, "run", str(DATA)], env))
            rerun.append(measure([*WXHUB, "run", str(DATA)], env))
        finally:
            cleanup()
    return [(f"{name}: full run", full), (f"{name}: re-run, nothing changed", rerun)]


def sqlite_url() -> tuple[str, Callable[[], None]]:
    folder = tempfile.mkdtemp(prefix="wxhub-bench-")
    path = Path(folder) / "wxhub.db"

    def cleanup() -> None:
        # The database, its WAL files and the job's lock file beside it.
        shutil.rmtree(folder, ignore_errors=True)

    return f"sqlite:///{path}", cleanup


@contextmanager
def fresh_mysql_database(server_url: str | URL) -> Iterator[str]:
    """A new, empty database on the server for one measurement, dropped afterwards."""
    server = make_url(server_url)
    name = f"wxhub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


def mysql_url_factory(server: str) -> Factory:
    def make() -> tuple[str, Callable[[], None]]:
        held = ExitStack()
        return held.enter_context(fresh_mysql_database(server)), held.close

    return make


def get_json(url: str) -> Any:
    """The JSON body of a GET on the local server under test."""
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  (loopback)  # nosec B310
        return json.loads(response.read())


def calibration_s() -> float:
    """Seconds for 10 million empty loop turns: this host's speed varies by 2x over a day."""
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return time.perf_counter() - started


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    parser.add_argument("--skip-mysql", action="store_true")
    options = parser.parse_args()

    calibration_before = calibration_s()
    results = bench_backend("SQLite", sqlite_url, options.repeat)
    if not options.skip_mysql:
        admin = create_engine(options.mysql_url)
        with admin.connect() as conn:
            version = conn.execute(text("SELECT VERSION()")).scalar()
        admin.dispose()
        print(f"MySQL server: {version}")
        results += bench_backend("MariaDB", mysql_url_factory(options.mysql_url), options.repeat)

    print(f"Machine: {machine()}; {options.repeat} runs each")
    print(
        f"Calibration (10M empty Python loop turns): {calibration_before:.2f} s before, "
        f"{calibration_s():.2f} s after\n"
    )
    print("| measurement | median s | best s | worst s | peak RSS MB (max) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for label, samples in results:
        seconds = [s.seconds for s in samples]
        print(
            f"| {label} | {statistics.median(seconds):.2f} | {min(seconds):.2f} | "
            f"{max(seconds):.2f} | {max(s.peak_rss_mb for s in samples):.0f} |"
        )


if __name__ == "__main__":
    main()
