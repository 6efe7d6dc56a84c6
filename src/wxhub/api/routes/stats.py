"""``GET /api/weather/stats``: yearly statistics per station."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from sqlalchemy import Row, func, select

from wxhub.api.caching import VersionedCache, cached_answer
from wxhub.api.csv_export import stream_csv, wants_csv
from wxhub.api.db import connection
from wxhub.api.listing import Listing, PageRequest
from wxhub.api.schemas import Problem, StatsQuery, YearlyStatsPage
from wxhub.db.schema import weather_yearly_stats as stats

bp = APIBlueprint("stats", __name__, url_prefix="/api", abp_tags=[Tag(name="statistics")])


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def _item(row: Row[Any]) -> dict[str, Any]:
    return {
        "station_id": row.station_id,
        "year": row.year,
        "avg_max_temp_c": _number(row.avg_max_temp_c),
        "avg_min_temp_c": _number(row.avg_min_temp_c),
        "total_precipitation_cm": _number(row.total_precipitation_cm),
        "max_temp_days": row.max_temp_days,
        "min_temp_days": row.min_temp_days,
        "precipitation_days": row.precipitation_days,
    }


# The table's columns in the table's order, but the day count kept for the API's own paging.
_COLUMNS = tuple(c.name for c in stats.c if c.name != "observation_days")

LISTING = Listing(
    path="/api/weather/stats",
    key_columns=[stats.c.station_id, stats.c.year],
    key_types=[str, int],
    to_item=_item,
)


def _filtered(query: StatsQuery) -> list[Any]:
    conditions: list[Any] = []
    station_ids = query.station_ids()
    if station_ids is not None:
        conditions.append(stats.c.station_id.in_(station_ids))
    first_year, last_year = query.year_range()
    if first_year is not None:
        conditions.append(stats.c.year >= first_year)
    if last_year is not None:
        conditions.append(stats.c.year <= last_year)
    return conditions


# Totals per filter for the current data version: a page costs its seek, not a count too.
_TOTALS = VersionedCache()


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
    cached = cached_answer("csv" if as_csv else "json")
    if cached is not None:
        return cached
    conditions = _filtered(query)
    base = select(*(stats.c[name] for name in _COLUMNS)).where(*conditions)
    if as_csv:
        ordered = base.order_by(stats.c.station_id, stats.c.year)
        return stream_csv(ordered, _COLUMNS, lambda row: tuple(_item(row).values()), "stats.csv")
    conn = connection()
    total = _TOTALS.get(
        tuple(sorted(query.filters().items())),
        lambda: conn.execute(select(func.count()).select_from(stats).where(*conditions)).one()[0],
    )

    def first_key(offset: int) -> tuple[str, int] | None:
        # The statistics table has one row per station-year (thousands, not millions).
        row = conn.execute(
            select(stats.c.station_id, stats.c.year)
            .where(*conditions)
            .order_by(stats.c.station_id, stats.c.year)
            .limit(1)
            .offset(offset)
        ).first()
        return None if row is None else (row.station_id, row.year)

    return LISTING.respond(
        conn,
        base,
        query.filters(),
        PageRequest(query.page, query.page_size, query.cursor),
        total=int(total),
        first_key_of_page=first_key,
    )
