"""``GET /api/weather``: daily observations, ordered by station and date.

The 1.7 million rows are paged by seeking in the primary key (station_id, obs_date), and
neither the total nor a jump to page N counts them: both come from the per-station-year
``observation_days`` of the yearly statistics, corrected by exact counts of at most one
partial year at each end of a date range. Those counts are as fresh as the last aggregation
(the nightly job ends with it); the ``next`` and ``prev`` links are exact whatever it says.
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
from collections.abc import Sequence
from typing import Any

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from sqlalchemy import Connection, Integer, Select, bindparam, func, select

from wxhub.api.caching import VersionedCache, cached_answer
from wxhub.api.csv_export import stream_csv, wants_csv
from wxhub.api.db import connection, read_version_with
from wxhub.api.listing import Listing, PageRequest
from wxhub.api.pagination import Key, beyond
from wxhub.api.reads import Compiled, Statements, date_param, iso, run, tenths
from wxhub.api.schemas import ObservationPage, Problem, WeatherQuery
from wxhub.db.schema import weather_observations as obs
from wxhub.db.schema import weather_yearly_stats as stats

bp = APIBlueprint("weather", __name__, url_prefix="/api", abp_tags=[Tag(name="observations")])


def _item(row: Sequence[Any]) -> dict[str, Any]:
    station_id, day, tmax, tmin, prcp = row
    return {
        "station_id": station_id,
        "date": iso(day),
        "max_temp_c": None if tmax is None else tmax / 10,
        "min_temp_c": None if tmin is None else tmin / 10,
        "precipitation_mm": None if prcp is None else prcp / 10,
    }


CSV_HEADER = ("station_id", "date", "max_temp_c", "min_temp_c", "precipitation_mm")


def _cells(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row as CSV cells: the item's values, without building the item (an export writes
    every row of the table)."""
    station_id, day, tmax, tmin, prcp = row
    return (station_id, iso(day), tenths(tmax), tenths(tmin), tenths(prcp))


LISTING = Listing(
    path="/api/weather",
    key_types=[str, dt.date],
    key_positions=[0, 1],
    to_item=_item,
)
_KEY = (obs.c.station_id, obs.c.obs_date)
# What a page and an export read, in the order ``_item`` and ``_cells`` take it.
_COLUMNS = (
    obs.c.station_id,
    obs.c.obs_date,
    obs.c.max_temp_tenths_c,
    obs.c.min_temp_tenths_c,
    obs.c.precipitation_tenths_mm,
)
_STATEMENTS = Statements()

StationYearCount = tuple[str, int, int]
# Counts per filter, for the current data version: a page costs one small query, not 4,820
# rows of statistics read and summed again.
_COUNTS = VersionedCache(max_entries=4096)
# Days per station-year of a set of stations, whatever the dates asked: distinct date ranges
# of the same stations share it.
_YEARS = VersionedCache(max_entries=4096)


def _station_condition(count: int | None) -> list[Any]:
    """``station_id IN (:s0, ...)`` with ``count`` parameters; nothing for every station."""
    if count is None:
        return []
    return [obs.c.station_id.in_([bindparam(f"s{i}") for i in range(count)])]


def _station_params(station_ids: Sequence[str] | None) -> dict[str, Any]:
    return {} if station_ids is None else {f"s{i}": s for i, s in enumerate(station_ids)}


# Up to this many stations, the partial years' counts are scalars read with the data version;
# beyond, one GROUP BY per year after it.
EXACT_WITH_VERSION = 8


def _exact_of_one(i: int, j: int) -> Select[Any]:
    """The days of station ``s{i}`` between ``low{j}`` and ``high{j}``: a scalar."""
    return (
        select(func.count())
        .select_from(obs)
        .where(
            obs.c.station_id == bindparam(f"s{i}"),
            obs.c.obs_date.between(bindparam(f"low{j}"), bindparam(f"high{j}")),
        )
    )


class _Filter:
    """The request's filters, as the parameters of the compiled statements: the one place
    that turns them into SQL, for the JSON pages and the CSV export alike."""

    def __init__(
        self,
        station_ids: Sequence[str] | None,
        start: dt.date | None,
        end: dt.date | None,
    ) -> None:
        self.station_ids, self.start, self.end = station_ids, start, end
        self.count = None if station_ids is None else len(station_ids)
        # What changes the statements' text: how many ids, and which bounds are present.
        self.shape = (self.count, start is not None, end is not None)
        # What the counts of matching rows depend on.
        self.key = (None if station_ids is None else tuple(station_ids), start, end)
        self.params = _station_params(station_ids)
        conn = self.conn
        if start is not None:
            self.params["start"] = date_param(conn, start)
        if end is not None:
            self.params["end"] = date_param(conn, end)
        # Exact counts per (station, partial year) read with the data version, if they were.
        self.exact: dict[int, dict[tuple[str, int], int]] = {}

    @property
    def conn(self) -> Connection:
        # The request's connection when asked, not when made: the request's first read
        # replaces a connection the server has dropped (api/db.py).
        return connection()

    def partial_years(self) -> list[int]:
        """The years of the range's ends that it does not cover whole: their days are
        counted in the observations, the other years' come from the statistics."""
        years = []
        start, end = self.start, self.end
        if start and (start.month, start.day) != (1, 1):
            years.append(start.year)
        if end and (end.month, end.day) != (12, 31) and (not years or end.year != years[0]):
            years.append(end.year)
        return years

    def bounds(self, year: int) -> tuple[dt.date, dt.date]:
        """The days of ``year`` inside the range."""
        low, high = dt.date(year, 1, 1), dt.date(year, 12, 31)
        if self.start and self.start > low:
            low = self.start
        if self.end and self.end < high:
            high = self.end
        return low, high

    def read_exact_with_version(self) -> None:
        """The partial years' exact counts of a few stations, in the data version's own
        statement: one scalar count per station and year (``SELECT (version), (count),
        ...``), so on MySQL a distinct page of one station costs a round trip fewer."""
        years = self.partial_years()
        if not years or self.station_ids is None or len(self.station_ids) > EXACT_WITH_VERSION:
            return
        conn = self.conn
        params = dict(self.params)
        parts: list[Compiled] = []
        for j, year in enumerate(years):
            low, high = self.bounds(year)
            params[f"low{j}"], params[f"high{j}"] = date_param(conn, low), date_param(conn, high)
            for i in range(len(self.station_ids)):
                build = functools.partial(_exact_of_one, i, j)
                parts.append(_STATEMENTS.get(conn, ("exact of one", i, j), build))
        values = iter(read_version_with(params, *parts))
        for year in years:
            self.exact[year] = {
                (station_id, year): int(next(values)) for station_id in self.station_ids
            }

    def conditions(self) -> list[Any]:
        conditions = _station_condition(self.count)
        if self.start is not None:
            conditions.append(obs.c.obs_date >= bindparam("start"))
        if self.end is not None:
            conditions.append(obs.c.obs_date <= bindparam("end"))
        return conditions

    def seek(self, key: Key | None, forward: bool, inclusive: bool, limit: int) -> list[Any]:
        shape = ("page", *self.shape, key is not None, forward, inclusive)

        def build() -> Select[Any]:
            query = select(*_COLUMNS).where(*self.conditions())
            if key is not None:
                bound: list[Any] = [bindparam("k0"), bindparam("k1")]
                query = query.where(
                    beyond(self.conn, _KEY, bound, forward=forward, inclusive=inclusive)
                )
            order = _KEY if forward else [c.desc() for c in _KEY]
            return query.order_by(*order).limit(bindparam("limit", type_=Integer))

        params = {**self.params, "limit": limit}
        if key is not None:
            params["k0"], params["k1"] = key[0], date_param(self.conn, key[1])  # type: ignore[arg-type]
        return run(self.conn, _STATEMENTS.get(self.conn, shape, build), params)

    def every_row(self) -> Compiled:
        """All matching rows in key order, for the CSV export (run with ``self.params``):
        the pages' conditions without a seek or a limit."""

        def build() -> Select[Any]:
            return select(*_COLUMNS).where(*self.conditions()).order_by(*_KEY)

        return _STATEMENTS.get(self.conn, ("every row", *self.shape), build)


class _Counts:
    """Matching rows per station-year, in key order, from the statistics table."""

    def __init__(self, where: _Filter) -> None:
        self.where = where
        self.rows, self.ends = _COUNTS.get(where.key, self._station_years_with_running_totals)

    def total(self) -> int:
        return self.ends[-1] if self.ends else 0

    def first_key(self, offset: int) -> tuple[str, dt.date | str] | None:
        """The key of the row at ``offset`` in key order: a binary search of the running
        totals of the station-years, then an OFFSET of at most one year's days inside one
        station-year."""
        index = bisect.bisect_right(self.ends, offset)
        if index == len(self.rows):
            return None
        station_id, year, _ = self.rows[index]
        within = offset - (self.ends[index - 1] if index else 0)
        low, high = self.where.bounds(year)
        conn = self.where.conn

        def build() -> Select[Any]:
            return (
                select(obs.c.obs_date)
                .where(
                    obs.c.station_id == bindparam("station"),
                    obs.c.obs_date.between(bindparam("low"), bindparam("high")),
                )
                .order_by(obs.c.obs_date)
                .limit(1)
                .offset(bindparam("within", type_=Integer))
            )

        params = {
            "station": station_id,
            "low": date_param(conn, low),
            "high": date_param(conn, high),
            "within": within,
        }
        rows = run(conn, _STATEMENTS.get(conn, "day at offset", build), params)
        return (station_id, rows[0][0]) if rows else None

    def _station_years_with_running_totals(self) -> tuple[list[StationYearCount], list[int]]:
        rows = self._station_years()
        return rows, list(itertools.accumulate(count for _, _, count in rows))

    def _all_years(self) -> list[StationYearCount]:
        where = self.where
        count = where.count

        def build() -> Select[Any]:
            station = (
                []
                if count is None
                else [stats.c.station_id.in_([bindparam(f"s{i}") for i in range(count)])]
            )
            return (
                select(stats.c.station_id, stats.c.year, stats.c.observation_days)
                .where(*station)
                .order_by(stats.c.station_id, stats.c.year)
            )

        compiled = _STATEMENTS.get(where.conn, ("years", count), build)
        return [
            (station_id, int(year), int(days))
            for station_id, year, days in run(
                where.conn, compiled, _station_params(where.station_ids)
            )
        ]

    def _station_years(self) -> list[StationYearCount]:
        station_key = None if self.where.station_ids is None else tuple(self.where.station_ids)
        rows = _YEARS.get(station_key, self._all_years)
        start, end = self.where.start, self.where.end
        first_year = start.year if start else None
        last_year = end.year if end else None
        partial = set(self.where.partial_years())
        exact = {key: count for year in partial for key, count in self._exact(year).items()}
        return [
            (station_id, year, exact.get((station_id, year), 0) if year in partial else days)
            for station_id, year, days in rows
            if (first_year is None or year >= first_year)
            and (last_year is None or year <= last_year)
        ]

    def _exact(self, year: int) -> dict[tuple[str, int], int]:
        where = self.where
        if year in where.exact:
            return where.exact[year]
        low, high = where.bounds(year)
        count = where.count

        def build() -> Select[Any]:
            return (
                select(obs.c.station_id, func.count())
                .where(
                    *_station_condition(count),
                    obs.c.obs_date.between(bindparam("low"), bindparam("high")),
                )
                .group_by(obs.c.station_id)
            )

        params = {
            **_station_params(where.station_ids),
            "low": date_param(where.conn, low),
            "high": date_param(where.conn, high),
        }
        rows = run(where.conn, _STATEMENTS.get(where.conn, ("exact", count), build), params)
        return {(station_id, year): int(n) for station_id, n in rows}


@bp.get(
    "/weather",
    summary="Daily observations",
    responses={200: ObservationPage, 400: Problem, 503: Problem},
)
def list_weather(query: WeatherQuery) -> Response:
    """Daily maximum and minimum temperature (degrees C) and precipitation (mm) per station,
    ordered by station, then date; null where a value is missing. With format=csv (or
    Accept: text/csv), every matching row as CSV, streamed, without pagination."""
    as_csv = wants_csv(query.format)
    start, end = query.date_range()
    where = _Filter(query.station_ids(), start, end)
    if not as_csv and not _COUNTS.holds_recent(where.key):
        # Counts not seen at the newest version: a partial year's are read with the data
        # version (if the answer turns out to be in the answer cache, a small indexed count
        # was read for nothing).
        where.read_exact_with_version()
    cached = cached_answer("csv" if as_csv else "json")
    if cached is not None:
        return cached
    if as_csv:
        return stream_csv(where.every_row(), where.params, CSV_HEADER, _cells, "weather.csv")
    counts = _Counts(where)
    return LISTING.respond(
        where.seek,
        query.filters(),
        PageRequest(query.page, query.page_size, query.cursor),
        total=counts.total(),
        first_key_of_page=counts.first_key,
    )
