"""``GET /api/stations``: every station with its first and last day and its observation count.

Read from ``station_summary``, one row per station that the aggregation keeps up to date, so
a page is one primary-key range read whatever the size of the data.
"""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from sqlalchemy import Row, func, select

from wxhub.api.caching import VersionedCache, cached_answer
from wxhub.api.db import connection
from wxhub.api.listing import Listing, PageRequest
from wxhub.api.schemas import Problem, StationPage, StationsQuery
from wxhub.db.schema import station_summary as summary

bp = APIBlueprint("stations", __name__, url_prefix="/api", abp_tags=[Tag(name="stations")])


def _item(row: Row[Any]) -> dict[str, Any]:
    return {
        "station_id": row.station_id,
        "first_date": row.first_obs_date.isoformat(),
        "last_date": row.last_obs_date.isoformat(),
        "observations": int(row.observation_days),
    }


# The number of stations, for the current data version.
_TOTALS = VersionedCache(max_entries=1)

LISTING = Listing(
    path="/api/stations",
    key_columns=[summary.c.station_id],
    key_types=[str],
    to_item=_item,
)


@bp.get(
    "/stations",
    summary="List the stations",
    responses={200: StationPage, 400: Problem, 503: Problem},
)
def list_stations(query: StationsQuery) -> Response:
    """Every station with data, by id, with its first and last day and number of days."""
    cached = cached_answer("json")
    if cached is not None:
        return cached
    base = select(summary)
    conn = connection()
    count = select(func.count()).select_from(summary)
    total = _TOTALS.get("stations", lambda: conn.execute(count).scalar_one())

    def first_key(offset: int) -> tuple[str] | None:
        key = conn.execute(
            select(summary.c.station_id)
            .order_by(summary.c.station_id)
            .limit(1)
            .offset(offset)  # at most one row per station: a few hundred, never millions
        ).scalar()
        return None if key is None else (key,)

    return LISTING.respond(
        conn,
        base,
        query.filters(),
        PageRequest(query.page, query.page_size, query.cursor),
        total=total,
        first_key_of_page=first_key,
    )
