"""``GET /api/stations``: the stations with data, their first and last day, observation count
and metadata; ``GET /api/stations/{station_id}``: one station.

The list is ``station_summary`` (one row per station with data, kept by the aggregation)
joined at query time to ``stations`` (NOAA's metadata, by primary key). Without a metadata
filter the join is a LEFT JOIN read in the summary's key order, and a station without
metadata has nulls; a metadata filter (``state``, ``country``, ``bbox``, ``q``) keeps only
stations with metadata, and reads ``stations`` in its key order instead: one index range of
``(state, station_id)`` or ``(country_code, station_id)`` per state or country asked for, a
scan of the small ``stations`` table for ``bbox`` and ``q``. Either way a page is a seek, and
``total`` is counted once per filter and data version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from flask import Response
from flask_openapi3.blueprint import APIBlueprint
from flask_openapi3.models.tag import Tag
from sqlalchemy import Connection, Integer, Select, bindparam, func, select
from sqlalchemy.sql.elements import ColumnElement

from wxhub.api.caching import VersionedCache, cached_answer, with_cache_headers
from wxhub.api.db import connection
from wxhub.api.errors import ProblemError
from wxhub.api.listing import Listing, PageRequest, json_response, select_seek
from wxhub.api.pagination import Key, beyond
from wxhub.api.reads import Statements, iso, number, run
from wxhub.api.schemas import Problem, StationDetail, StationPage, StationPath, StationsQuery
from wxhub.db.schema import station_summary as summary
from wxhub.db.schema import stations as meta

bp = APIBlueprint("stations", __name__, url_prefix="/api", abp_tags=[Tag(name="stations")])

# The summary's columns, then the metadata a list item shows.
_SUMMARY = (summary.c.first_obs_date, summary.c.last_obs_date, summary.c.observation_days)
_METADATA = (meta.c.name, meta.c.latitude, meta.c.longitude, meta.c.elevation_m, meta.c.state)
_DETAIL = (meta.c.country_code, meta.c.gsn_flag, meta.c.hcn_crn_flag, meta.c.wmo_id)


def _number(value: Any) -> float | None:
    # A Decimal of at most 8 digits: its float prints as the same digits in JSON.
    return None if value is None else float(value)


def _fields(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A list item: the fields the list had before the metadata, in their order, then the
    metadata (null for a station without it)."""
    first, last = row["first_obs_date"], row["last_obs_date"]
    return {
        "station_id": row["station_id"],
        "first_date": None if first is None else first.isoformat(),
        "last_date": None if last is None else last.isoformat(),
        "observations": int(row["observation_days"] or 0),
        "name": row["name"],
        "latitude": _number(row["latitude"]),
        "longitude": _number(row["longitude"]),
        "elevation_m": _number(row["elevation_m"]),
        "state": row["state"],
    }


def _item(row: Sequence[Any]) -> dict[str, Any]:
    """A list item from a row of the list's columns, in their order (see ``_fields``)."""
    station_id, first, last, days, name, latitude, longitude, elevation, state = row
    return {
        "station_id": station_id,
        "first_date": iso(first),
        "last_date": iso(last),
        "observations": int(days or 0),
        "name": name,
        "latitude": number(latitude),
        "longitude": number(longitude),
        "elevation_m": number(elevation),
        "state": state,
    }


# Every station with data, in the summary's key order; with a metadata filter, the stations
# with metadata and data, in the metadata's key order (the same ids, so a cursor reads the
# same in both).
LISTING = Listing(path="/api/stations", key_types=[str], key_positions=[0], to_item=_item)
_STATEMENTS = Statements()

# Totals per filter for the current data version (the job's runs and the metadata loader
# both bump it), so a page costs its seek, not a count too.
_TOTALS = VersionedCache()
# A page jump in the station list starts from the nearest of every ANCHOR_EVERY-th station id
# (kept per worker and data version: 1,300 ids for all of GHCN-Daily's ~130,000 stations),
# then skips fewer than ANCHOR_EVERY keys: constant cost, where an OFFSET from the first
# station grew with the page (a station page at 100x the extract: 1.45x the time at 1x).
ANCHOR_EVERY = 100
_ANCHORS = VersionedCache(max_entries=2)


def _every_nth_station(conn: Connection) -> list[str]:
    """Every ANCHOR_EVERY-th station id with data, in key order, from the first."""
    compiled = _STATEMENTS.get(
        conn,
        "all ids",
        lambda: select(summary.c.station_id).order_by(summary.c.station_id),
    )
    return [row[0] for row in run(conn, compiled, {})[::ANCHOR_EVERY]]


def _metadata_conditions(query: StationsQuery) -> list[ColumnElement[bool]]:
    """Every metadata filter but the one the legs are split on (see ``_legs``)."""
    conditions: list[ColumnElement[bool]] = []
    states, countries = query.states(), query.countries()
    if states and countries:
        conditions.append(meta.c.country_code.in_(countries))
    bounds = query.bounds()
    if bounds is not None:
        min_lon, min_lat, max_lon, max_lat = bounds
        conditions.append(meta.c.longitude.between(min_lon, max_lon))
        conditions.append(meta.c.latitude.between(min_lat, max_lat))
    if query.q is not None:
        conditions.append(_name_contains(query.q))
    return conditions


def _name_contains(text: str) -> ColumnElement[bool]:
    """Case-insensitive, identical on both backends: both sides lower-cased (ASCII, see
    StationsQuery.q) and compared byte for byte. MySQL's own collations would also ignore
    accents (É matches e) where SQLite does not; % and _ in the text are escaped."""
    name: ColumnElement[str] = func.lower(meta.c.name)
    if connection().dialect.name in ("mysql", "mariadb"):
        name = name.collate("utf8mb4_bin")
    return name.contains(text.lower(), autoescape=True)


def _filtered_base() -> Select[Any]:
    return select(meta.c.station_id, *_SUMMARY, *_METADATA).select_from(
        meta.join(summary, summary.c.station_id == meta.c.station_id)
    )


def _legs(query: StationsQuery) -> list[Select[Any]]:
    """One query per state (else per country) asked for, each an index range in key order."""
    base = _filtered_base().where(*_metadata_conditions(query))
    if query.states():
        return [base.where(meta.c.state == state) for state in query.states()]
    if query.countries():
        return [base.where(meta.c.country_code == country) for country in query.countries()]
    return [base]


def _all_conditions(query: StationsQuery) -> list[ColumnElement[bool]]:
    conditions = _metadata_conditions(query)
    if query.states():
        conditions.append(meta.c.state.in_(query.states()))
    elif query.countries():
        conditions.append(meta.c.country_code.in_(query.countries()))
    return conditions


def _has_metadata_filter(query: StationsQuery) -> bool:
    return any(value is not None for value in (query.state, query.country, query.bbox, query.q))


@bp.get(
    "/stations",
    summary="List the stations",
    responses={200: StationPage, 400: Problem, 503: Problem},
)
def list_stations(query: StationsQuery) -> Response:
    """Every station with data, by id, with its first and last day, number of days, and
    NOAA's name, position and state (null when the station's metadata is not loaded). The
    filters state, country, bbox and q keep stations with metadata that match all of them."""
    cached = cached_answer("json")
    if cached is not None:
        return cached
    conn = connection()
    paging = PageRequest(query.page, query.page_size, query.cursor)
    if not _has_metadata_filter(query):
        return _unfiltered(conn, query, paging)
    conditions = _all_conditions(query)
    key = meta.c.station_id
    joined = meta.join(summary, summary.c.station_id == meta.c.station_id)
    count = select(func.count()).select_from(joined).where(*conditions)
    total = _TOTALS.get(
        tuple(sorted(query.filters().items())), lambda: conn.execute(count).scalar_one()
    )

    def first_key(offset: int) -> tuple[str] | None:
        found = conn.execute(
            select(key).select_from(joined).where(*conditions).order_by(key).limit(1).offset(offset)
        ).scalar()
        return None if found is None else (found,)

    seek = select_seek(conn, _legs(query), [meta.c.station_id])
    return LISTING.respond(seek, query.filters(), paging, total=total, first_key_of_page=first_key)


def _unfiltered(conn: Connection, query: StationsQuery, paging: PageRequest) -> Response:
    key = (summary.c.station_id,)

    def seek(after: Key | None, forward: bool, inclusive: bool, limit: int) -> list[Any]:
        def build() -> Select[Any]:
            base = _unfiltered_base()
            if after is not None:
                bound: list[Any] = [bindparam("k0")]
                base = base.where(beyond(conn, key, bound, forward=forward, inclusive=inclusive))
            order = key if forward else [c.desc() for c in key]
            return base.order_by(*order).limit(bindparam("limit", type_=Integer))

        shape = ("page", after is not None, forward, inclusive)
        params = {"limit": limit} if after is None else {"limit": limit, "k0": after[0]}
        return run(conn, _STATEMENTS.get(conn, shape, build), params)

    def count() -> int:
        compiled = _STATEMENTS.get(conn, "total", lambda: select(func.count()).select_from(summary))
        return int(run(conn, compiled, {})[0][0])

    def rows_from(offset: int, limit: int) -> list[Any]:
        # From the nearest anchor at or before ``offset``, skipping fewer than ANCHOR_EVERY
        # keys: the page in one statement.
        anchors = _ANCHORS.get((), lambda: _every_nth_station(conn))
        index, within = divmod(offset, ANCHOR_EVERY)
        if index >= len(anchors):
            return []

        def build() -> Select[Any]:
            return (
                _unfiltered_base()
                .where(summary.c.station_id >= bindparam("anchor"))
                .order_by(summary.c.station_id)
                .limit(bindparam("limit", type_=Integer))
                .offset(bindparam("within", type_=Integer))
            )

        params = {"anchor": anchors[index], "within": within, "limit": limit}
        return run(conn, _STATEMENTS.get(conn, "page from anchor", build), params)

    total = _TOTALS.get((), count)
    return LISTING.respond(seek, query.filters(), paging, total=total, rows_from=rows_from)


def _unfiltered_base() -> Select[Any]:
    """Every station with data, with its metadata when it is loaded."""
    return select(summary.c.station_id, *_SUMMARY, *_METADATA).select_from(
        summary.outerjoin(meta, meta.c.station_id == summary.c.station_id)
    )


@bp.get(
    "/stations/<station_id>",
    summary="One station",
    responses={200: StationDetail, 400: Problem, 404: Problem, 503: Problem},
)
def get_station(path: StationPath) -> Response:
    """A station with data, or known from NOAA's metadata alone (then with null first and
    last day and 0 days); the fields of a list item, plus its country, network flags and
    WMO number. 404 when wxhub knows neither data nor metadata for the id."""
    cached = cached_answer("json")
    if cached is not None:
        return cached
    conn = connection()
    station_id = path.station_id
    data = conn.execute(
        select(summary.c.station_id, *_SUMMARY).where(summary.c.station_id == station_id)
    ).first()
    metadata = conn.execute(
        select(meta.c.station_id, *_METADATA, *_DETAIL).where(meta.c.station_id == station_id)
    ).first()
    if data is None and metadata is None:
        raise ProblemError(
            f"No station {station_id}: wxhub has neither data nor metadata for it.",
            status=404,
            title="Not Found",
            parameter="station_id",
        )
    # A station may have data, metadata or both: absent columns are null.
    fields: dict[str, Any] = {c.name: None for c in (*_SUMMARY, *_METADATA, *_DETAIL)}
    for row in (data, metadata):
        if row is not None:
            fields.update(row._mapping)
    fields["station_id"] = station_id
    item = _fields(fields)
    item["country"] = fields["country_code"]
    for name in ("gsn_flag", "hcn_crn_flag", "wmo_id"):
        item[name] = fields[name]
    return with_cache_headers(json_response(item), "json")
