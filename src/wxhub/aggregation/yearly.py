"""Yearly statistics per station, computed inside the database with one grouped upsert.

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
    literal_column,
    select,
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


def _grouped_statistics() -> Any:
    """One row per pending station-year, read through the primary key by date range."""
    in_year = and_(
        obs.c.station_id == pending.c.station_id,
        obs.c.obs_date >= year_start(pending.c.year),
        obs.c.obs_date < year_start(pending.c.year + 1),
    )
    return (
        select(
            pending.c.station_id,
            pending.c.year,
            _hundredths_mean(obs.c.max_temp_tenths_c).label("avg_max_temp_c"),
            _hundredths_mean(obs.c.min_temp_tenths_c).label("avg_min_temp_c"),
            (func.sum(obs.c.precipitation_tenths_mm) / literal_column("100.0")).label(
                "total_precipitation_cm"
            ),
            func.count(obs.c.max_temp_tenths_c).label("max_temp_days"),
            func.count(obs.c.min_temp_tenths_c).label("min_temp_days"),
            func.count(obs.c.precipitation_tenths_mm).label("precipitation_days"),
        )
        .select_from(pending.join(obs, in_year))
        .where(literal_column("1") == 1)  # SQLite needs a WHERE before an upsert's ON
        .group_by(pending.c.station_id, pending.c.year)
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
    years = select(obs.c.station_id, extract("year", obs.c.obs_date)).distinct()
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
    conn.execute(
        upsert(conn, stats, update_columns=STAT_COLUMNS).from_select(
            ["station_id", "year", *STAT_COLUMNS], _grouped_statistics()
        )
    )
    # A queued station-year with no observation left has no statistics either; a full
    # recomputation also drops statistics of station-years that were never queued.
    has_no_rows = ~exists().where(
        obs.c.station_id == pending.c.station_id,
        obs.c.obs_date >= year_start(pending.c.year),
        obs.c.obs_date < year_start(pending.c.year + 1),
    )
    queued = exists().where(
        pending.c.station_id == stats.c.station_id, pending.c.year == stats.c.year
    )
    conn.execute(delete(stats).where(~queued if full else queued.where(has_no_rows)))
    conn.execute(delete(pending))
    return int(count)
