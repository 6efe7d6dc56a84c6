"""Benchmark the API as it is deployed: `wxhub serve` on the full data set, wrk on loopback.

For SQLite and MariaDB: load data/wx_data into a fresh database, start `wxhub serve`, and for
each endpoint below measure p50/p99 latency at concurrency 1 and throughput at concurrency 16
with wrk (`apt-get install wrk`). Beside it, the same pages the common way (COUNT(*) plus
LIMIT/OFFSET) timed as SQL on the same database, so the difference is measured.

    python bench/bench_api.py [--seconds 5] [--workers N] [--threads 8] [--skip-mysql]

Each backend is measured twice: as deployed (each worker keeps the answers it has built,
keyed by ETag) and with that cache off (``WXHUB_API_CACHE_MB=0``), so every request builds
its answer from the database: the cost of a first request, or of traffic that never repeats.

Traffic goes to 127.0.0.1 only, for a bounded time.
"""

from __future__ import annotations

import argparse
import json
import os
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
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from wxhub.db.schema import weather_observations as obs

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "wx_data"
STATION = "USC00110072"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  (loopback)  # nosec B310
        return json.loads(response.read())


@contextmanager
def server(database_url: str, workers: int | None, threads: int, cache_mb: int) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "WXHUB_LOG_FORMAT": "json",
        "WXHUB_API_CACHE_MB": str(cache_mb),
    }
    args = [sys.executable, "-m", "wxhub.cli", "serve", "--port", str(port)]
    args += ["--threads", str(threads)] + (["--workers", str(workers)] if workers else [])
    process = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                get_json(f"{base}/readyz")
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)


def wrk(url: str, connections: int, seconds: int) -> tuple[float, float, float]:
    """(p50 ms, p99 ms, requests/s) for ``url``."""
    threads = min(connections, 2)
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if re.search(r"Non-2xx or 3xx responses", out):
        raise SystemExit(f"errors from {url}:\n{out}")

    def latency(percent: str) -> float:
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(\w+)", out, re.M).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    return latency("50"), latency("99"), rate


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


def calibration_s() -> float:
    """Seconds for 10 million empty loop turns: this host's speed varies by 2x over a day."""
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    return time.perf_counter() - started


def bench(label: str, database_url: str, options: argparse.Namespace, cache_mb: int) -> None:
    seconds = options.seconds
    with server(database_url, options.workers, options.threads, cache_mb) as base:
        near_end = get_json(f"{base}/api/weather?page=17290")["pagination"]["next"]
        endpoints = [
            ("one station, first page", f"/api/weather?station_id={STATION}"),
            (
                "one station, one year",
                f"/api/weather?station_id={STATION}&start_date=1985-01-01&end_date=1985-12-31",
            ),
            ("near the end, via next links", near_end),
            ("page=17000 (a jump)", "/api/weather?page=17000"),
            ("stats of one station", f"/api/weather/stats?station_id={STATION}"),
            ("station list", "/api/stations"),
        ]
        kept = f"answers kept ({cache_mb} MiB per worker)" if cache_mb else "every answer built"
        workers = options.workers or "default"
        print(
            f"\n### {label}, {kept} ({workers} workers x {options.threads} threads, "
            f"wrk {seconds} s per figure, calibration {calibration_s():.2f} s)\n"
        )
        print("| request | p50 ms (c=1) | p99 ms (c=1) | req/s (c=16) |")
        print("| --- | ---: | ---: | ---: |")
        for name, path in endpoints:
            p50, p99, _ = wrk(base + path, 1, seconds)
            _, _, rate = wrk(base + path, 16, seconds)
            print(f"| {name} | {p50:.2f} | {p99:.2f} | {rate:.0f} |")


def bench_backend(label: str, database_url: str, options: argparse.Namespace) -> None:
    load(database_url)
    bench(label, database_url, options, cache_mb=32)
    bench(label, database_url, options, cache_mb=0)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="default: as wxhub serve")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    parser.add_argument("--skip-mysql", action="store_true")
    options = parser.parse_args()

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
