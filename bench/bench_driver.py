"""What the MySQL driver costs an API page: one station's page of 100 days, in-process.

For each way of getting the page to JSON text, the median time of many distinct pages (a
different station and start date each, deterministic per seed) on one kept connection:

* PyMySQL (pure Python, what wxhub ships), rows decoded by the driver, dicts, ``json.dumps``;
* mysqlclient (the C driver), the same, when it is installed (``pip install mysqlclient``,
  which needs ``pkg-config`` and ``libmariadb-dev`` to build);
* PyMySQL with the rows built as JSON by the database (``JSON_ARRAYAGG(JSON_OBJECT(...))``):
  one string comes back, nothing is decoded per row in Python (its numbers print as
  DECIMALs, ``25.5000``: not wxhub's bytes, which would need more SQL to match);
* the same query without the page (``SELECT 1``): the round trip alone, the floor.

    python bench/bench_driver.py [--mysql-url mysql+pymysql://root@127.0.0.1:3306/] [--pages 2000]

Loads data/wx_data into a throwaway MariaDB database first (about a minute).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "wx_data"
STATIONS = sorted(p.stem for p in DATA.glob("*.txt"))
ROWS = (
    "SELECT station_id, obs_date, max_temp_tenths_c, min_temp_tenths_c, "
    "precipitation_tenths_mm FROM weather_observations "
    "WHERE station_id = %s AND obs_date >= %s ORDER BY obs_date LIMIT 100"
)
AS_JSON = (
    "SELECT JSON_ARRAYAGG(JSON_OBJECT('station_id', station_id, 'date', obs_date, "  # noqa: S608  # nosec B608
    "'max_temp_c', max_temp_tenths_c / 10, 'min_temp_c', min_temp_tenths_c / 10, "
    "'precipitation_mm', precipitation_tenths_mm / 10) ORDER BY obs_date) FROM ("
    f"{ROWS}) AS page"
)


def _tenths(value: int | None) -> float | None:
    return None if value is None else value / 10


def _page_json(rows: Any) -> str:
    return json.dumps(
        [
            {
                "station_id": s,
                "date": d.isoformat(),
                "max_temp_c": _tenths(a),
                "min_temp_c": _tenths(b),
                "precipitation_mm": _tenths(c),
            }
            for s, d, a, b, c in rows
        ]
    )


def timed(fetch: Callable[[str, dt.date], object], pages: list[tuple[str, dt.date]]) -> float:
    """Median ms per page over ``pages`` (after 100 to warm up)."""
    for station, day in pages[:100]:
        fetch(station, day)
    times = []
    for station, day in pages[100:]:
        started = time.perf_counter()
        fetch(station, day)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    parser.add_argument("--pages", type=int, default=2000)
    options = parser.parse_args()
    server = make_url(options.mysql_url)
    name = f"wxhub_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    try:
        url = server.set(database=name).render_as_string(hide_password=False)
        env = {**os.environ, "DATABASE_URL": url, "WXHUB_LOG_FORMAT": "json"}
        subprocess.run(
            [sys.executable, "-m", "wxhub.cli", "run", str(DATA)],
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        measure(server.host or "127.0.0.1", server.port or 3306, server.username, name, options)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE {name}"))


def measure(host: str, port: int, user: str | None, database: str, options: Any) -> None:
    import pymysql  # noqa: PLC0415

    rng = random.Random(14)  # noqa: S311  (a reproducible sample)
    pages = [
        (rng.choice(STATIONS), dt.date(1985, 1, 1) + dt.timedelta(days=rng.randrange(10_957)))
        for _ in range(options.pages + 100)
    ]
    login = {"host": host, "port": port, "user": user or "root", "database": database}
    results: list[tuple[str, float]] = []
    conn = pymysql.connect(**login, autocommit=True)
    cursor = conn.cursor()

    def pymysql_rows(station: str, day: dt.date) -> str:
        cursor.execute(ROWS, (station, day))
        return _page_json(cursor.fetchall())

    def pymysql_json(station: str, day: dt.date) -> str:
        cursor.execute(AS_JSON, (station, day))
        return str(cursor.fetchone()[0])

    def round_trip(_station: str, _day: dt.date) -> object:
        cursor.execute("SELECT 1")
        return cursor.fetchall()

    results.append(
        ("PyMySQL: rows decoded in Python, dicts, json.dumps", timed(pymysql_rows, pages))
    )
    results.append(("PyMySQL: JSON_ARRAYAGG built by the database", timed(pymysql_json, pages)))
    results.append(("PyMySQL: SELECT 1 (the round trip alone)", timed(round_trip, pages)))
    try:
        import MySQLdb  # noqa: PLC0415
    except ImportError:
        results.append(("mysqlclient: not installed (pip install mysqlclient)", float("nan")))
    else:
        c_conn = MySQLdb.connect(
            host=host, port=port, user=login["user"], database=database, autocommit=True
        )
        c_cursor = c_conn.cursor()

        def mysqlclient_rows(station: str, day: dt.date) -> str:
            c_cursor.execute(ROWS, (station, day))
            return _page_json(c_cursor.fetchall())

        results.append(
            ("mysqlclient: rows decoded in C, dicts, json.dumps", timed(mysqlclient_rows, pages))
        )
    started = time.perf_counter()
    for _ in range(10_000_000):
        pass
    calibration = time.perf_counter() - started
    print(
        f"\n{options.pages} distinct pages of 100 days, median ms each "
        f"(calibration {calibration:.2f} s)\n"
    )
    print("| how | ms per page |")
    print("| --- | ---: |")
    for label, ms in results:
        print(f"| {label} | {ms:.3f} |")


if __name__ == "__main__":
    main()
