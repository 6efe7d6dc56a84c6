"""Yearly statistics per station, computed inside the database with grouped INSERTs (one on
SQLite; on MySQL/MariaDB one per queued year of each batch of stations, see
:data:`BATCH_STATIONS`): each reads the rows of the queued station-years only.

Only the station-years queued in ``aggregation_pending`` (by the loader, in the same
transaction as the rows that changed them) are recomputed; ``full=True`` queues every
station-year first. The queue is emptied in the same transaction as the statistics are
written, so a crash between ingestion and aggregation loses nothing: the next run finds the
queue as it was.

Averages are rounded half away from zero to hundredths with integer arithmetic on the exact
sums of tenths, so SQLite and MySQL store the same decimal; the precipitation total is exact.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    and_,
    bindparam,
    case,
    delete,
    exists,
    extract,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ColumnElement, FunctionElement
from sqlalchemy.types import Date

from wxhub.db.schema import (
    aggregation_pending,
    bump_data_version,
    station_summary,
    weather_observations,
    weather_yearly_stats,
)
from wxhub.db.sql import int_div, upsert

obs = weather_observations
pending = aggregation_pending
stats = weather_yearly_stats
summary = station_summary


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


def _hundredths_mean(total: ColumnElement[Any], n: ColumnElement[Any]) -> ColumnElement[Any]:
    """total / n / 10 rounded half away from zero to 0.01; NULL when n is 0.

    hundredths = 10 * total / n, rounded: sign(t) * ((20*|t| + n) DIV 2n), exact in integers.
    """
    n = func.nullif(n, 0)
    positive = int_div(total * 20 + n, n * 2)
    negative = -int_div(-total * 20 + n, n * 2)
    return case((total >= 0, positive), else_=negative) / literal_column("100.0")


_MEASURES = {
    "max_temp": obs.c.max_temp_tenths_c,
    "min_temp": obs.c.min_temp_tenths_c,
    "precipitation": obs.c.precipitation_tenths_mm,
}


def _sums_and_counts() -> list[Any]:
    """The seven aggregates everything is derived from (each computed once per row)."""
    columns: list[Any] = [func.count().label("observation_n")]
    for name, column in _MEASURES.items():
        columns += [func.sum(column).label(f"{name}_sum"), func.count(column).label(f"{name}_n")]
    return columns


def _grouped_sums_sqlite(stations: Collection[str] | None) -> Any:
    """Sums and counts per pending station-year that has observations, on SQLite: the
    primary key walked once per pending station-year, by date range, grouped in that order
    with no sort."""
    in_year = and_(
        obs.c.station_id == pending.c.station_id,
        obs.c.obs_date >= year_start(pending.c.year),
        obs.c.obs_date < year_start(pending.c.year + 1),
    )
    return (
        select(pending.c.station_id, pending.c.year, *_sums_and_counts())
        .select_from(pending.join(obs, in_year))
        .where(*_of(pending.c.station_id, stations))
        .group_by(pending.c.station_id, pending.c.year)
        .subquery("sums")
    )


def _grouped_sums_of_one_year() -> Any:
    """Sums and counts of year ``:year`` for the stations ``:ids``, on MySQL/MariaDB.

    MySQL/MariaDB will not range-scan with date bounds taken from another table (joined to
    the queue, they read every row of each queued station: 50 s for the full data; and
    grouping every year of the queued stations reads their whole history when one day was
    added, so a nightly run cost as much as a full aggregation). With the stations as a list
    and the year's first and last day as constants, the range optimizer reads exactly one
    interval of the primary key per station: the rows of the queued station-years, no more.
    """
    return (
        select(
            obs.c.station_id,
            bindparam("year", type_=Integer).label("year"),
            *_sums_and_counts(),
        )
        .where(
            obs.c.station_id.in_(bindparam("ids", expanding=True)),
            obs.c.obs_date.between(bindparam("low"), bindparam("high")),
        )
        .group_by(obs.c.station_id)
        .subquery("sums")
    )


def _grouped_statistics(sums_query: Any) -> Any:
    """One row of statistics per row of sums and counts."""
    sums = sums_query.c
    return select(
        sums.station_id,
        sums.year,
        _hundredths_mean(sums.max_temp_sum, sums.max_temp_n).label("avg_max_temp_c"),
        _hundredths_mean(sums.min_temp_sum, sums.min_temp_n).label("avg_min_temp_c"),
        (sums.precipitation_sum / literal_column("100.0")).label("total_precipitation_cm"),
        sums.max_temp_n.label("max_temp_days"),
        sums.min_temp_n.label("min_temp_days"),
        sums.precipitation_n.label("precipitation_days"),
        sums.observation_n.label("observation_days"),
    )


STAT_COLUMNS = (
    "avg_max_temp_c",
    "avg_min_temp_c",
    "total_precipitation_cm",
    "max_temp_days",
    "min_temp_days",
    "precipitation_days",
    "observation_days",
)


@contextmanager
def _without_lateral_derived(conn: Connection) -> Iterator[None]:
    """MariaDB may plan the per-year grouping "LATERAL DERIVED": once per queued
    station-year, each time over all the station's days (69 s instead of 2 s for the full
    data, seen right after a bulk load, when its row estimates are stale). MySQL 8 has no
    such plan and no such switch."""
    if not getattr(conn.dialect, "is_mariadb", False):
        yield
        return
    conn.exec_driver_sql("SET SESSION optimizer_switch='split_materialized=off'")
    try:
        yield
    finally:
        conn.exec_driver_sql("SET SESSION optimizer_switch='split_materialized=default'")


def queue_all(conn: Connection, stations: Collection[str] | None = None) -> None:
    """Queue every station-year that has observations (of ``stations``, when given)."""
    years = (
        select(obs.c.station_id, extract("year", obs.c.obs_date))
        .where(*_of(obs.c.station_id, stations))
        .where(literal_column("1") == 1)  # SQLite needs a WHERE before an upsert's ON
        .distinct()
    )
    conn.execute(
        upsert(conn, pending, update_columns=()).from_select(["station_id", "year"], years)
    )


def aggregate(
    conn: Connection, *, full: bool = False, stations: Collection[str] | None = None
) -> int:
    """Recompute the queued station-years (all of them with ``full``); returns how many.

    With ``stations``, only theirs: a sharded run aggregates its own shard, so tasks running
    side by side never read, replace or dequeue one another's station-years. Runs in the
    caller's transaction.
    """
    if stations is not None and not stations:
        return 0
    if full:
        queue_all(conn, stations)
    mine = _of(pending.c.station_id, stations)
    count = conn.execute(select(func.count()).select_from(pending).where(*mine)).scalar_one()
    if count == 0:
        return 0
    # Replace rather than upsert: a queued station-year whose observations are gone then has
    # no statistics either, with no extra query. Readers see the old rows until the commit.
    queued = exists().where(
        pending.c.station_id == stats.c.station_id, pending.c.year == stats.c.year, *mine
    )
    everything = full and stations is None
    conn.execute(delete(stats) if everything else delete(stats).where(queued))
    columns = ["station_id", "year", *STAT_COLUMNS]
    if conn.dialect.name == "sqlite":
        sums = _grouped_sums_sqlite(stations)
        conn.execute(insert(stats).from_select(columns, _grouped_statistics(sums)))
    else:
        statement = insert(stats).from_select(
            columns, _grouped_statistics(_grouped_sums_of_one_year())
        )
        with _without_lateral_derived(conn):
            for year, ids in _queued_years_in_batches(conn, mine):
                params = {
                    "year": year,
                    "ids": ids,
                    "low": dt.date(year, 1, 1),
                    "high": dt.date(year, 12, 31),
                }
                conn.execute(statement, params)
    _refresh_station_summary(conn, mine)
    conn.execute(delete(pending).where(*mine))
    bump_data_version(conn)
    return int(count)


# MySQL/MariaDB: the queue is read and aggregated this many stations at a time, one
# statement per year queued among them, so neither the queue in memory nor one statement's
# list of stations grows with the data (a full aggregation at 100x the extract: 34 batches,
# about 1,000 statements; a night: one statement per batch).
BATCH_STATIONS = 500


def _queued_years_in_batches(conn: Connection, mine: list[Any]) -> Iterator[tuple[int, list[str]]]:
    """(year, the stations that have it queued) for batches of ``BATCH_STATIONS`` stations."""
    ids = list(
        conn.execute(
            select(pending.c.station_id).where(*mine).distinct().order_by(pending.c.station_id)
        ).scalars()
    )
    for i in range(0, len(ids), BATCH_STATIONS):
        first, last = ids[i], ids[min(i + BATCH_STATIONS, len(ids)) - 1]
        by_year: dict[int, list[str]] = {}
        queued = select(pending.c.station_id, pending.c.year).where(
            *mine, pending.c.station_id.between(first, last)
        )
        for station_id, year in conn.execute(queued):
            by_year.setdefault(int(year), []).append(station_id)
        for year in sorted(by_year):
            yield year, by_year[year]


def _refresh_station_summary(conn: Connection, mine: list[Any]) -> None:
    """The summary rows of the stations whose years were just recomputed: their number of
    days from the statistics, their first and last day by one index seek each."""
    touched = select(pending.c.station_id).where(*mine).distinct().scalar_subquery()
    conn.execute(delete(summary).where(summary.c.station_id.in_(touched)))
    per_station = (
        select(stats.c.station_id, func.sum(stats.c.observation_days).label("days"))
        .where(stats.c.station_id.in_(touched))
        .group_by(stats.c.station_id)
        .subquery("per_station")
    )

    def day(order: Any) -> Any:
        return (
            select(obs.c.obs_date)
            .where(obs.c.station_id == per_station.c.station_id)
            .order_by(order)
            .limit(1)
            .scalar_subquery()
        )

    conn.execute(
        insert(summary).from_select(
            ["station_id", "first_obs_date", "last_obs_date", "observation_days"],
            select(
                per_station.c.station_id,
                day(obs.c.obs_date),
                day(obs.c.obs_date.desc()),
                per_station.c.days,
            ),
        )
    )


def _of(column: Any, stations: Collection[str] | None) -> list[Any]:
    return [] if stations is None else [column.in_(sorted(stations))]
