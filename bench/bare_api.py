"""The least a Python WSGI endpoint can do for each of the API's request types: the reference
``bench_api.py`` measures wxhub against, served by the same gunicorn configuration.

One module-level function per request, no framework: parse the query string, run one query
on a connection kept per thread (the driver's own, opened once), build the rows as dicts and
``json.dumps`` them. No validation, no ETag, no pagination links, no error documents: what is
left is the server, the driver, the query and the encoding, which wxhub cannot avoid either.

    BARE_DATABASE_URL=sqlite:////tmp/wxhub.db gunicorn --chdir bench bare_api:app
    BARE_DATABASE_URL=mysql://root@127.0.0.1:3306/wxhub gunicorn --chdir bench bare_api:app

``page=N`` is answered the common way (LIMIT/OFFSET), the one request type where the bare
endpoint is not the least work wxhub could do but the naive way to do it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

PAGE = 100
_local = threading.local()
_URL = urlsplit(os.environ.get("BARE_DATABASE_URL", "sqlite:///wxhub.db"))
_MYSQL = _URL.scheme.startswith("mysql")
_MARK = "%s" if _MYSQL else "?"


def _connect() -> Any:
    if not _MYSQL:
        # sqlite:////abs/path -> /abs/path; read-only, like a replica would be.
        return sqlite3.connect(f"file:{_URL.path[1:]}?mode=ro", uri=True, check_same_thread=False)
    import pymysql  # noqa: PLC0415  (only for the MySQL reference)

    return pymysql.connect(
        host=_URL.hostname or "127.0.0.1",
        port=_URL.port or 3306,
        user=_URL.username or "root",
        password=_URL.password or "",
        database=_URL.path.lstrip("/"),
        autocommit=True,
    )


def _rows(sql: str, params: Iterable[Any]) -> list[tuple[Any, ...]]:
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = _connect()
    cursor = conn.cursor()
    cursor.execute(sql.replace("?", _MARK), tuple(params))
    rows = cursor.fetchall()
    cursor.close()
    return list(rows)


def _tenths(value: int | None) -> float | None:
    return None if value is None else value / 10


def _iso(value: Any) -> str:
    return value if isinstance(value, str) else value.isoformat()


def _observations(rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    return [
        {
            "station_id": station,
            "date": _iso(day),
            "max_temp_c": _tenths(tmax),
            "min_temp_c": _tenths(tmin),
            "precipitation_mm": _tenths(prcp),
        }
        for station, day, tmax, tmin, prcp in rows
    ]


OBS = (
    "SELECT station_id, obs_date, max_temp_tenths_c, min_temp_tenths_c, "
    "precipitation_tenths_mm FROM weather_observations"
)


def first(q: dict[str, str]) -> list[dict[str, Any]]:
    """One station's first page from a date."""
    sql = f"{OBS} WHERE station_id = ? AND obs_date >= ? ORDER BY obs_date LIMIT {PAGE}"
    return _observations(_rows(sql, (q["station_id"], q["start_date"])))


def year(q: dict[str, str]) -> list[dict[str, Any]]:
    """One station between two dates."""
    sql = f"{OBS} WHERE station_id = ? AND obs_date BETWEEN ? AND ? ORDER BY obs_date LIMIT {PAGE}"
    return _observations(_rows(sql, (q["station_id"], q["start_date"], q["end_date"])))


def after(q: dict[str, str]) -> list[dict[str, Any]]:
    """The page after a key (a ``next`` link), across stations: a row-value comparison on
    SQLite (one index range); MySQL ranges the spelled-out disjunction, not row values."""
    params: tuple[int, ...]
    if _MYSQL:
        where, params = "station_id > ? OR (station_id = ? AND obs_date > ?)", (1, 1, 2)
    else:
        where, params = "(station_id, obs_date) > (?, ?)", (1, 2)
    values = {1: q["station_id"], 2: q["date"]}
    sql = f"{OBS} WHERE {where} ORDER BY station_id, obs_date LIMIT {PAGE}"
    return _observations(_rows(sql, [values[p] for p in params]))


def offset(q: dict[str, str]) -> list[dict[str, Any]]:
    """Page N the common way."""
    skip = (int(q["page"]) - 1) * PAGE
    sql = f"{OBS} ORDER BY station_id, obs_date LIMIT {PAGE} OFFSET {skip}"
    return _observations(_rows(sql, ()))


def stats(q: dict[str, str]) -> list[dict[str, Any]]:
    """One station's yearly statistics from a year."""
    sql = (
        "SELECT station_id, year, avg_max_temp_c, avg_min_temp_c, total_precipitation_cm, "  # noqa: S608  # nosec B608  (PAGE: a constant)
        "max_temp_days, min_temp_days, precipitation_days FROM weather_yearly_stats "
        f"WHERE station_id = ? AND year >= ? ORDER BY year LIMIT {PAGE}"
    )
    names = (
        "station_id",
        "year",
        "avg_max_temp_c",
        "avg_min_temp_c",
        "total_precipitation_cm",
        "max_temp_days",
        "min_temp_days",
        "precipitation_days",
    )
    rows = _rows(sql, (q["station_id"], q.get("start_year", "0")))
    return [
        {
            name: float(value) if name.startswith(("avg", "total")) and value is not None else value
            for name, value in zip(names, row, strict=True)
        }
        for row in rows
    ]


def stations(q: dict[str, str]) -> list[dict[str, Any]]:
    """A page of the station list with metadata, the common way (LIMIT/OFFSET)."""
    size = int(q.get("page_size", PAGE))
    skip = (int(q.get("page", "1")) - 1) * size
    sql = (
        "SELECT s.station_id, s.first_obs_date, s.last_obs_date, s.observation_days, m.name, "  # noqa: S608  # nosec B608  (ints)
        "m.latitude, m.longitude, m.elevation_m, m.state FROM station_summary s "
        "LEFT JOIN stations m ON m.station_id = s.station_id "
        f"ORDER BY s.station_id LIMIT {size} OFFSET {skip}"
    )
    return [
        {
            "station_id": station,
            "first_date": _iso(first_day),
            "last_date": _iso(last_day),
            "observations": days,
            "name": name,
            "latitude": None if lat is None else float(lat),
            "longitude": None if lon is None else float(lon),
            "elevation_m": None if elev is None else float(elev),
            "state": state,
        }
        for station, first_day, last_day, days, name, lat, lon, elev, state in _rows(sql, ())
    ]


ROUTES: dict[str, Callable[[dict[str, str]], list[dict[str, Any]]]] = {
    "/bare/first": first,
    "/bare/year": year,
    "/bare/after": after,
    "/bare/offset": offset,
    "/bare/stats": stats,
    "/bare/stations": stations,
}


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """The WSGI application."""
    handler = ROUTES.get(environ["PATH_INFO"])
    if handler is None:
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]
    query = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    body = json.dumps({"data": handler(query)}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
