"""``GET /api/stations``: every station with its first and last day and its observation count.

Answered from the yearly statistics (one row per station-year) and two primary-key seeks per
station for the first and last day, never by scanning the observations.
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
from wxhub.db.schema import weather_observations as obs
from wxhub.db.schema import weather_yearly_stats as stats

bp = APIBlueprint("stations", __name__, url_prefix="/api", abp_tags=[Tag(name="stations")])

_per_station = (
    select(
        stats.c.station_id,
        func.sum(stats.c.observation_days).label("observations"),
    )
    .group_by(stats.c.station_id)
    .subquery("per_station")
)
# ORDER BY ... LIMIT 1 rather than MIN()/MAX(): MariaDB answers a correlated MIN() by
# reading every day of the station (470 ms for the list); this is one index seek each.
_first = (
    select(obs.c.obs_date)
    .where(obs.c.station_id == _per_station.c.station_id)
    .order_by(obs.c.obs_date)
    .limit(1)
    .scalar_subquery()
)
_last = (
    select(obs.c.obs_date)
    .where(obs.c.station_id == _per_station.c.station_id)
    .order_by(obs.c.obs_date.desc())
    .limit(1)
    .scalar_subquery()
)


def _item(row: Row[Any]) -> dict[str, Any]:
    return {
        "station_id": row.station_id,
        "first_date": row.first_date.isoformat() if row.first_date else None,
        "last_date": row.last_date.isoformat() if row.last_date else None,
        "observations": int(row.observations or 0),
    }


# The number of stations, for the current data version.
_TOTALS = VersionedCache(max_entries=1)

LISTING = Listing(
    path="/api/stations",
    key_columns=[_per_station.c.station_id],
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
    base = select(
        _per_station.c.station_id,
        _first.label("first_date"),
        _last.label("last_date"),
        _per_station.c.observations,
    )
    conn = connection()
    count = select(func.count()).select_from(_per_station)
    total = _TOTALS.get("stations", lambda: conn.execute(count).scalar_one())

    def first_key(offset: int) -> tuple[str] | None:
        key = conn.execute(
            select(_per_station.c.station_id)
            .order_by(_per_station.c.station_id)
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
