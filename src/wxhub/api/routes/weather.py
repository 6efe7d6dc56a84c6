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
import itertools
from collections.abc import Sequence
from typing import Any

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from sqlalchemy import Connection, Row, func, select

from wxhub.api.caching import VersionedCache, cached_answer
from wxhub.api.csv_export import stream_csv, wants_csv
from wxhub.api.db import connection
from wxhub.api.listing import Listing, PageRequest
from wxhub.api.schemas import ObservationPage, Problem, WeatherQuery
from wxhub.db.schema import weather_observations as obs
from wxhub.db.schema import weather_yearly_stats as stats

bp = APIBlueprint("weather", __name__, url_prefix="/api", abp_tags=[Tag(name="observations")])


def _tenths(value: int | None) -> float | None:
    return None if value is None else value / 10


def _item(row: Row[Any]) -> dict[str, Any]:
    return {
        "station_id": row.station_id,
        "date": row.obs_date.isoformat(),
        "max_temp_c": _tenths(row.max_temp_tenths_c),
        "min_temp_c": _tenths(row.min_temp_tenths_c),
        "precipitation_mm": _tenths(row.precipitation_tenths_mm),
    }


CSV_HEADER = ("station_id", "date", "max_temp_c", "min_temp_c", "precipitation_mm")


def _cells(row: Row[Any]) -> tuple[Any, ...]:
    return (
        row.station_id,
        row.obs_date.isoformat(),
        _tenths(row.max_temp_tenths_c),
        _tenths(row.min_temp_tenths_c),
        _tenths(row.precipitation_tenths_mm),
    )


LISTING = Listing(
    path="/api/weather",
    key_columns=[obs.c.station_id, obs.c.obs_date],
    key_types=[str, dt.date],
    to_item=_item,
)

StationYearCount = tuple[str, int, int]
# Counts per filter, for the current data version: a page costs one small query, not 4,820
# rows of statistics read and summed again.
_COUNTS = VersionedCache()


class _Counts:
    """Matching rows per station-year, in key order, from the statistics table."""

    def __init__(
        self,
        conn: Connection,
        station_ids: Sequence[str] | None,
        start: dt.date | None,
        end: dt.date | None,
    ) -> None:
        self.conn, self.station_ids, self.start, self.end = conn, station_ids, start, end
        key = (None if station_ids is None else tuple(station_ids), start, end)
        self.rows, self.ends = _COUNTS.get(key, self._station_years_with_running_totals)

    def total(self) -> int:
        return self.ends[-1] if self.ends else 0

    def first_key(self, offset: int) -> tuple[str, dt.date] | None:
        """The key of the row at ``offset`` in key order: a binary search of the running
        totals of the station-years, then an OFFSET of at most one year's days inside one
        station-year."""
        index = bisect.bisect_right(self.ends, offset)
        if index == len(self.rows):
            return None
        station_id, year, _ = self.rows[index]
        within = offset - (self.ends[index - 1] if index else 0)
        low, high = self._bounds(year)
        day = self.conn.execute(
            select(obs.c.obs_date)
            .where(obs.c.station_id == station_id, obs.c.obs_date.between(low, high))
            .order_by(obs.c.obs_date)
            .limit(1)
            .offset(within)
        ).scalar()
        return None if day is None else (station_id, day)

    def _station_years_with_running_totals(self) -> tuple[list[StationYearCount], list[int]]:
        rows = self._station_years()
        return rows, list(itertools.accumulate(count for _, _, count in rows))

    def _bounds(self, year: int) -> tuple[dt.date, dt.date]:
        low, high = dt.date(year, 1, 1), dt.date(year, 12, 31)
        if self.start and self.start > low:
            low = self.start
        if self.end and self.end < high:
            high = self.end
        return low, high

    def _station_filter(self, column: Any) -> list[Any]:
        return [] if self.station_ids is None else [column.in_(self.station_ids)]

    def _station_years(self) -> list[StationYearCount]:
        conditions = self._station_filter(stats.c.station_id)
        if self.start:
            conditions.append(stats.c.year >= self.start.year)
        if self.end:
            conditions.append(stats.c.year <= self.end.year)
        rows = self.conn.execute(
            select(stats.c.station_id, stats.c.year, stats.c.observation_days)
            .where(*conditions)
            .order_by(stats.c.station_id, stats.c.year)
        ).all()
        partial = {year for year in self._partial_years()}
        exact = {key: count for year in partial for key, count in self._exact(year).items()}
        return [
            (station_id, year, exact.get((station_id, year), 0) if year in partial else days)
            for station_id, year, days in rows
        ]

    def _partial_years(self) -> list[int]:
        years = []
        if self.start and (self.start.month, self.start.day) != (1, 1):
            years.append(self.start.year)
        if self.end and (self.end.month, self.end.day) != (12, 31):
            years.append(self.end.year)
        return years

    def _exact(self, year: int) -> dict[tuple[str, int], int]:
        low, high = self._bounds(year)
        rows = self.conn.execute(
            select(obs.c.station_id, func.count())
            .where(*self._station_filter(obs.c.station_id), obs.c.obs_date.between(low, high))
            .group_by(obs.c.station_id)
        )
        return {(station_id, year): int(count) for station_id, count in rows}


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
    cached = cached_answer("csv" if as_csv else "json")
    if cached is not None:
        return cached
    station_ids = query.station_ids()
    start, end = query.date_range()
    conditions: list[Any] = []
    if station_ids is not None:
        conditions.append(obs.c.station_id.in_(station_ids))
    if start is not None:
        conditions.append(obs.c.obs_date >= start)
    if end is not None:
        conditions.append(obs.c.obs_date <= end)
    base = select(obs).where(*conditions)
    if as_csv:
        ordered = base.order_by(obs.c.station_id, obs.c.obs_date)
        return stream_csv(ordered, CSV_HEADER, _cells, "weather.csv")
    conn = connection()
    counts = _Counts(conn, station_ids, start, end)
    return LISTING.respond(
        conn,
        base,
        query.filters(),
        PageRequest(query.page, query.page_size, query.cursor),
        total=counts.total(),
        first_key_of_page=counts.first_key,
    )
