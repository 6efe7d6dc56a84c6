"""Yearly statistics per station, computed inside the database with one grouped INSERT.

Only the station-years queued in ``aggregation_pending`` (by the loader, in the same
transaction as the rows that changed them) are recomputed; ``full=True`` queues every
station-year first. The queue is emptied in the same transaction as the statistics are
written, so a crash between ingestion and aggregation loses nothing: the next run finds the
queue as it was.

Averages are rounded half away from zero to hundredths with integer arithmetic on the exact
sums of tenths, so SQLite and MySQL store the same decimal; the precipitation total is exact.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    case,
    delete,
    exists,
    extract,
    func,
    insert,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.types import Date

from wxhub.db.schema import aggregation_pending, weather_observations, weather_yearly_stats
from wxhub.db.sql import int_div, upsert

obs = weather_observations
pending = aggregation_pending
stats = weather_yearly_stats


class year_start(FunctionElement[Any]):  # noqa: N801  (reads like the SQL function it is)
    """January 1st of an integer year, as a date the primary key index can range over."""

    type = Date()
    inherit_cache = True


@compiles(year_start)
def _year_start_sqlite(element: year_start, compiler: Any, **kw: Any) -> str:
    (year,) = list(element.clauses)
    return f"printf('%04d-01-01', {compiler.process(year, **kw)})"


@compiles(year_start, "mysql")
@compiles(year_start, "mariadb")
def _year_start_mysql(element: year_start, compiler: Any, **kw: Any) -> str:
    (year,) = list(element.clauses)
    return f"MAKEDATE({compiler.process(year, **kw)}, 1)"


def _hundredths_mean(tenths: ColumnElement[Any]) -> ColumnElement[Any]:
    """AVG(tenths) / 10 rounded half away from zero to 0.01, NULL when no value counts.

    hundredths = 10 * sum / n, rounded: sign(s) * ((20*|s| + n) DIV 2n), exact in integers.
    """
    total = func.sum(tenths)
    n = func.nullif(func.count(tenths), 0)
    positive = int_div(total * 20 + n, n * 2)
    negative = -int_div(-total * 20 + n, n * 2)
    rounded = case((total >= 0, positive), else_=negative)
    return rounded / literal_column("100.0")


def _statistics_columns() -> list[Any]:
    return [
        _hundredths_mean(obs.c.max_temp_tenths_c).label("avg_max_temp_c"),
        _hundredths_mean(obs.c.min_temp_tenths_c).label("avg_min_temp_c"),
        (func.sum(obs.c.precipitation_tenths_mm) / literal_column("100.0")).label(
            "total_precipitation_cm"
        ),
        func.count(obs.c.max_temp_tenths_c).label("max_temp_days"),
        func.count(obs.c.min_temp_tenths_c).label("min_temp_days"),
        func.count(obs.c.precipitation_tenths_mm).label("precipitation_days"),
    ]


def _grouped_statistics(dialect: str) -> Any:
    """One row per pending station-year that has observations.

    The fastest plan differs by engine, so the query's shape does (its result does not):
    SQLite walks the primary key once per pending station-year, by date range, and groups in
    that order with no sort; MySQL/MariaDB will not range-scan with bounds taken from another
    table (it scans the station's every row per year instead: 50 s for the full data), so
    there the rows of the pending stations are grouped by year and filtered by a semi-join
    on the queue (2 s).
    """
    if dialect == "sqlite":
        in_year = and_(
            obs.c.station_id == pending.c.station_id,
            obs.c.obs_date >= year_start(pending.c.year),
            obs.c.obs_date < year_start(pending.c.year + 1),
        )
        return (
            select(pending.c.station_id, pending.c.year, *_statistics_columns())
            .select_from(pending.join(obs, in_year))
            .group_by(pending.c.station_id, pending.c.year)
        )
    year = extract("year", obs.c.obs_date)
    return (
        select(obs.c.station_id, year, *_statistics_columns())
        .where(
            obs.c.station_id.in_(select(pending.c.station_id)),
            tuple_(obs.c.station_id, year).in_(select(pending.c.station_id, pending.c.year)),
        )
        .group_by(obs.c.station_id, year)
    )


STAT_COLUMNS = (
    "avg_max_temp_c",
    "avg_min_temp_c",
    "total_precipitation_cm",
    "max_temp_days",
    "min_temp_days",
    "precipitation_days",
)


def queue_all(conn: Connection) -> None:
    """Queue every station-year that has observations (for a full recomputation)."""
    years = (
        select(obs.c.station_id, extract("year", obs.c.obs_date))
        .where(literal_column("1") == 1)  # SQLite needs a WHERE before an upsert's ON
        .distinct()
    )
    conn.execute(
        upsert(conn, pending, update_columns=()).from_select(["station_id", "year"], years)
    )


def aggregate(conn: Connection, *, full: bool = False) -> int:
    """Recompute the queued station-years (all of them with ``full``); returns how many.

    Runs in the caller's transaction.
    """
    if full:
        queue_all(conn)
    count = conn.execute(select(func.count()).select_from(pending)).scalar_one()
    if count == 0:
        return 0
    # Replace rather than upsert: a queued station-year whose observations are gone then has
    # no statistics either, with no extra query. Readers see the old rows until the commit.
    queued = exists().where(
        pending.c.station_id == stats.c.station_id, pending.c.year == stats.c.year
    )
    conn.execute(delete(stats) if full else delete(stats).where(queued))
    conn.execute(
        insert(stats).from_select(
            ["station_id", "year", *STAT_COLUMNS], _grouped_statistics(conn.dialect.name)
        )
    )
    conn.execute(delete(pending))
    return int(count)
