"""The aggregation step: one transaction that recomputes the queued station-years."""

from __future__ import annotations

import logging
import time

from sqlalchemy import Engine

from wxhub.aggregation.yearly import aggregate

log = logging.getLogger(__name__)


def run_aggregation(engine: Engine, *, full: bool = False) -> int:
    """Recompute the yearly statistics that changed (all with ``full``); returns how many."""
    started = time.perf_counter()
    with engine.begin() as conn:
        count = aggregate(conn, full=full)
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
