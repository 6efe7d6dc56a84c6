"""The aggregation step: one transaction that recomputes the queued station-years."""

from __future__ import annotations

import logging
import time

from sqlalchemy import Connection, Engine, select

from wxhub.aggregation.yearly import aggregate
from wxhub.db.schema import aggregation_pending, weather_observations
from wxhub.domain import shard_of

log = logging.getLogger(__name__)


def run_aggregation(
    engine: Engine, *, full: bool = False, shard: tuple[int, int] | None = None
) -> int:
    """Recompute the yearly statistics that changed (all with ``full``); returns how many.

    With ``shard`` (K, N), only the station-years of the stations in shard K of N: the ones
    this task loaded, and no other task's.
    """
    started = time.perf_counter()
    with engine.begin() as conn:
        stations = None if shard is None else _stations_of_shard(conn, *shard, full=full)
        count = aggregate(conn, full=full, stations=stations)
    duration_s = round(time.perf_counter() - started, 3)
    log.info(
        "aggregated %d station-years in %.3f s%s",
        count,
        duration_s,
        " (full recomputation)" if full else "",
        extra={
            "event": "aggregation",
            "station_years": count,
            "full": full,
            "duration_s": duration_s,
        },
    )
    return count


def _stations_of_shard(conn: Connection, shard: int, shards: int, *, full: bool) -> set[str]:
    """The stations of shard ``shard`` that have anything to aggregate (a few thousand ids at
    most; the hash is computed here, the same way ingestion chose the files)."""
    table = weather_observations if full else aggregation_pending
    candidates = conn.execute(select(table.c.station_id).distinct()).scalars()
    return {station for station in candidates if shard_of(station, shards) == shard}
