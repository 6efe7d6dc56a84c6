"""``GET /api/weather/stats``: yearly statistics per station."""

from __future__ import annotations

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
from wxhub.api.reads import Compiled, Statements, run
from wxhub.api.schemas import Problem, StatsQuery, YearlyStatsPage
from wxhub.db.schema import weather_yearly_stats as stats

bp = APIBlueprint("stats", __name__, url_prefix="/api", abp_tags=[Tag(name="statistics")])


def _item(row: Sequence[Any]) -> dict[str, Any]:
    station_id, year, avg_max, avg_min, total_precipitation, max_days, min_days, prcp_days = row
    return {
        "station_id": station_id,
        "year": year,
        "avg_max_temp_c": None if avg_max is None else float(avg_max),
        "avg_min_temp_c": None if avg_min is None else float(avg_min),
        "total_precipitation_cm": (
            None if total_precipitation is None else float(total_precipitation)
        ),
        "max_temp_days": max_days,
        "min_temp_days": min_days,
        "precipitation_days": prcp_days,
    }


# The items' fields, in their order: the table's columns but the day count kept for the
# API's own paging.
_COLUMNS = (
    "station_id",
    "year",
    "avg_max_temp_c",
    "avg_min_temp_c",
    "total_precipitation_cm",
    "max_temp_days",
    "min_temp_days",
    "precipitation_days",
)

LISTING = Listing(
    path="/api/weather/stats",
    key_types=[str, int],
    key_positions=[0, 1],
    to_item=_item,
)
_KEY = (stats.c.station_id, stats.c.year)
_STATEMENTS = Statements()
# Totals per filter for the current data version: a page costs its seek, not a count too.
_TOTALS = VersionedCache(max_entries=4096)


class _Filter:
    """The request's filters, as the parameters of the compiled statements: the one place
    that turns them into SQL, for the JSON pages and the CSV export alike."""

    def __init__(self, query: StatsQuery) -> None:
        station_ids = query.station_ids()
        self.count = None if station_ids is None else len(station_ids)
        self.first_year, self.last_year = query.year_range()
        self.params: dict[str, Any] = (
            {} if station_ids is None else {f"s{i}": s for i, s in enumerate(station_ids)}
        )
        if self.first_year is not None:
            self.params["first_year"] = self.first_year
        if self.last_year is not None:
            self.params["last_year"] = self.last_year
        self.shape = (self.count, self.first_year is not None, self.last_year is not None)

    @property
    def conn(self) -> Connection:
        # The request's connection when asked, not when made: the request's first read
        # replaces a connection the server has dropped (api/db.py).
        return connection()

    def conditions(self) -> list[Any]:
        conditions: list[Any] = []
        if self.count is not None:
            conditions.append(
                stats.c.station_id.in_([bindparam(f"s{i}") for i in range(self.count)])
            )
        if self.first_year is not None:
            conditions.append(stats.c.year >= bindparam("first_year"))
        if self.last_year is not None:
            conditions.append(stats.c.year <= bindparam("last_year"))
        return conditions

    def seek(self, key: Key | None, forward: bool, inclusive: bool, limit: int) -> list[Any]:
        def build() -> Select[Any]:
            query = select(*(stats.c[name] for name in _COLUMNS)).where(*self.conditions())
            if key is not None:
                bound: list[Any] = [bindparam("k0"), bindparam("k1")]
                query = query.where(
                    beyond(self.conn, _KEY, bound, forward=forward, inclusive=inclusive)
                )
            order = _KEY if forward else [c.desc() for c in _KEY]
            return query.order_by(*order).limit(bindparam("limit", type_=Integer))

        shape = ("page", *self.shape, key is not None, forward, inclusive)
        params = {**self.params, "limit": limit}
        if key is not None:
            params["k0"], params["k1"] = key
        return run(self.conn, _STATEMENTS.get(self.conn, shape, build), params)

    def total_statement(self) -> Compiled:
        def build() -> Select[Any]:
            return select(func.count()).select_from(stats).where(*self.conditions())

        return _STATEMENTS.get(self.conn, ("total", *self.shape), build)

    def total(self) -> int:
        return int(run(self.conn, self.total_statement(), self.params)[0][0])

    def first_key(self, offset: int) -> tuple[str, int] | None:
        # The statistics table has one row per station-year (thousands, not millions).
        def build() -> Select[Any]:
            return (
                select(stats.c.station_id, stats.c.year)
                .where(*self.conditions())
                .order_by(*_KEY)
                .limit(1)
                .offset(bindparam("offset", type_=Integer))
            )

        compiled = _STATEMENTS.get(self.conn, ("offset", *self.shape), build)
        rows = run(self.conn, compiled, {**self.params, "offset": offset})
        return (rows[0][0], rows[0][1]) if rows else None

    def every_row(self) -> Compiled:
        """All matching rows in key order, for the CSV export (run with ``self.params``):
        the pages' conditions without a seek or a limit."""

        def build() -> Select[Any]:
            columns = (stats.c[name] for name in _COLUMNS)
            return select(*columns).where(*self.conditions()).order_by(*_KEY)

        return _STATEMENTS.get(self.conn, ("every row", *self.shape), build)


def _cells(row: Sequence[Any]) -> tuple[Any, ...]:
    """A row as CSV cells: the item's values, converted as for JSON."""
    return tuple(_item(row).values())


@bp.get(
    "/weather/stats",
    summary="Yearly statistics per station",
    responses={200: YearlyStatsPage, 400: Problem, 503: Problem},
)
def list_stats(query: StatsQuery) -> Response:
    """Average maximum and minimum temperature (degrees C) and total precipitation (cm)
    per station and year, with the number of days behind each; ordered by station, year.
    With format=csv (or Accept: text/csv), every matching row as CSV, without pagination."""
    as_csv = wants_csv(query.format)
    where = _Filter(query)
    filters = tuple(sorted(query.filters().items()))
    if not as_csv and not _TOTALS.holds_recent(filters):
        # A filter not seen at the newest version: its total is read with the data version,
        # in one statement (on MySQL, a round trip fewer; if the answer turns out to be in
        # the answer cache, one small count was read for nothing).
        (total,) = read_version_with(where.params, where.total_statement())
        _TOTALS.put(filters, int(total))
    cached = cached_answer("csv" if as_csv else "json")
    if cached is not None:
        return cached
    if as_csv:
        return stream_csv(where.every_row(), where.params, _COLUMNS, _cells, "stats.csv")
    total = _TOTALS.get(filters, where.total)
    return LISTING.respond(
        where.seek,
        query.filters(),
        PageRequest(query.page, query.page_size, query.cursor),
        total=total,
        first_key_of_page=where.first_key,
    )
