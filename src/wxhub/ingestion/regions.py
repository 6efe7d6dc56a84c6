"""A region by station metadata: the ids of the stations in some states or within a box.

``--state`` and ``--bbox`` choose stations by what ``ghcnd-stations.txt`` says of them, so
they need that metadata in the ``stations`` table (``wxhub stations SOURCE``, or the file in a
source folder or prefix). The ids found here become part of the run's
:class:`~wxhub.ingestion.selection.StationFilter`.
"""

from __future__ import annotations

from sqlalchemy import Connection, and_, func, select

from wxhub.db.schema import stations
from wxhub.ingestion.selection import SelectionSpec
from wxhub.ingestion.sources import SourceError


class SelectionError(SourceError):
    """A station selection that cannot be resolved; the message says what to do."""


def stations_matching(conn: Connection, spec: SelectionSpec) -> frozenset[str] | None:
    """The ids of the stations in ``spec``'s states and box; None if it names neither."""
    if not spec.needs_metadata:
        return None
    if not conn.execute(select(func.count()).select_from(stations)).scalar():
        raise SelectionError(
            f"{spec.described_as()}: no station metadata is loaded; load NOAA's "
            "ghcnd-stations.txt first (wxhub stations PATH_OR_S3_URI, or put it in the "
            "source folder or prefix)"
        )
    conditions = []
    if spec.states:
        conditions.append(stations.c.state.in_(spec.states))
    if spec.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = spec.bbox
        conditions += [
            stations.c.longitude.between(min_lon, max_lon),
            stations.c.latitude.between(min_lat, max_lat),
        ]
    query = select(stations.c.station_id).where(and_(*conditions))
    return frozenset(conn.execute(query).scalars())
