"""Loading NOAA's station list into ``stations``: one transaction, set-based, counted exactly.

The list is one file of about 130,000 stations, published again whole whenever any station
changes. So loading it is an upsert of the whole file, done in sets, not row by row:

1. the parsed rows go, in batches of :data:`BATCH_ROWS`, into a temporary staging table;
2. one query joins it to ``stations`` and counts the new, changed and unchanged stations;
3. one dialect upsert (``ON CONFLICT`` / ``ON DUPLICATE KEY``) writes only the new and changed
   ones, so an unchanged station is never rewritten;
4. the data version is bumped (new API ETags) if anything changed, and the file is recorded in
   the ledger with its rejects (and, for an S3 object, its ETag and size).

All of it commits together or not at all. Stations a later file leaves out are kept: the list
only grows at NOAA, and a truncated download must not delete stations. Like a station file,
the list is skipped when its content (SHA-256) was already loaded, and an S3 object whose
ETag and size are those last read is skipped without being read; ``force`` reads it again.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    LargeBinary,
    MetaData,
    String,
    Table,
    and_,
    case,
    cast,
    func,
    insert,
    or_,
    select,
)

from wxhub.db.retry import DEFAULT_RETRY_S, with_retries
from wxhub.db.schema import StationId, bump_data_version, stations
from wxhub.db.sql import create_temporary_table, same_values, upsert
from wxhub.ingestion import ledger
from wxhub.ingestion.rows import Reject
from wxhub.ingestion.sources import SourceFile
from wxhub.ingestion.stations import (
    LEDGER_SUBJECT,
    STATION_LIST_NAME,
    StationListParser,
    StationRow,
    iter_lines,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Rows bound per INSERT into the staging table: few statements, bounded memory.
BATCH_ROWS = 5000
REJECTS_LOGGED = 20
VALUE_COLUMNS = tuple(c.name for c in stations.columns if not c.primary_key)

_staging = Table(
    "wxhub_staging_stations",
    MetaData(),
    Column("station_id", StationId, primary_key=True),
    *(Column(name, stations.c[name].type) for name in VALUE_COLUMNS),
    prefixes=["TEMPORARY"],
)


class StationListFailed(Exception):  # noqa: N818  (reads as the condition it names)
    """The station list could not be read, or is not a station list; the message names it.
    Nothing of it was written."""


@dataclass
class StationLoadStats:
    """What loading (or skipping) the station list did."""

    source_uri: str
    content_sha256: str = ""
    skipped: bool = False  # already loaded: nothing was parsed or written
    unread: bool = False  # skipped on its listed ETag and size, before any read
    records_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    rejects: list[Reject] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        return len(self.rejects)

    @property
    def changed(self) -> bool:
        """Whether the stations table changed (and with it the data version)."""
        return self.inserted + self.updated > 0


def load_station_metadata(
    engine: Engine,
    source: SourceFile,
    *,
    run_id: int,
    force: bool = False,
    retry_s: float = DEFAULT_RETRY_S,
) -> StationLoadStats:
    """Load NOAA's station list from ``source`` into ``stations``, unless already loaded.

    ``source`` is any :class:`~wxhub.ingestion.sources.SourceFile` (a local file, plain or
    gzip, or an S3 object); ``run_id`` is the ``job_runs`` row the ledger entry belongs to.
    A step whose database connection fails is run again for ``retry_s`` seconds (each is one
    transaction). Raises :class:`StationListFailed` when the file cannot be read or holds no
    station line; database errors propagate.
    """

    def retried(step: Callable[[], T], what: str) -> T:
        return with_retries(engine, step, what=what, budget_s=retry_s)

    stats = StationLoadStats(source.uri)
    if not force and source.version is not None:
        version = source.version
        listed_sha = retried(
            lambda: _in_transaction(
                engine, lambda conn: ledger.object_content(conn, source.uri, version)
            ),
            "reading the ledger",
        )
        if listed_sha is not None:
            stats.content_sha256, stats.skipped, stats.unread = listed_sha, True, True
            _log_file(stats)
            return stats
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise StationListFailed(f"{source.uri}: cannot read: {exc.strerror or exc}") from exc
    stats.content_sha256 = hashlib.sha256(data).hexdigest()
    if not force and retried(
        lambda: _in_transaction(engine, lambda conn: _known(conn, source, stats.content_sha256)),
        "reading the ledger",
    ):
        stats.skipped = True
        _log_file(stats)
        return stats
    retried(
        lambda: _in_transaction(engine, lambda conn: _load(conn, source, data, run_id, stats)),
        f"loading {source.uri}",
    )
    _log_rejects(stats)
    _log_file(stats)
    return stats


def _in_transaction(engine: Engine, step: Callable[[Connection], T]) -> T:
    with engine.begin() as conn:
        return step(conn)


def _known(conn: Connection, source: SourceFile, content_sha256: str) -> bool:
    """Whether this content was loaded before; an S3 object read again for known content (a
    new ETag) has its version recorded, so the next run skips it unread."""
    file_id = ledger.file_id_of(conn, LEDGER_SUBJECT, content_sha256)
    if file_id is None:
        return False
    if source.version is not None:
        ledger.record_object(conn, source_uri=source.uri, version=source.version, file_id=file_id)
    return True


def _load(
    conn: Connection, source: SourceFile, data: bytes, run_id: int, stats: StationLoadStats
) -> None:
    """Everything that changes the database, in the caller's transaction."""
    # A pooled connection may keep the temporary table from an earlier load: emptied first.
    create_temporary_table(conn, _staging)
    conn.execute(_staging.delete())
    parser = StationListParser()
    _stage(conn, parser.rows(iter_lines(data)))
    if parser.rows_parsed == 0 and parser.rejects:
        first = parser.rejects[0]
        raise StationListFailed(
            f"{source.uri}: not a station list ({STATION_LIST_NAME}): none of its "
            f"{parser.records_read} lines is a station (line {first.line_no}: {first.reason})"
        )
    inserted, updated, unchanged = _compare(conn)
    _upsert_changed(conn)
    if inserted or updated:
        bump_data_version(conn)
    file_id = ledger.record_file(
        conn,
        run_id=run_id,
        station_id=LEDGER_SUBJECT,
        content_sha256=stats.content_sha256,
        source_uri=source.uri,
        size_bytes=len(data),
        records_read=parser.records_read,
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        rejects=parser.rejects,
    )
    if source.version is not None:
        ledger.record_object(conn, source_uri=source.uri, version=source.version, file_id=file_id)
    # Emptied, not dropped: a plain DROP TABLE would commit the transaction on MySQL.
    conn.execute(_staging.delete())
    # Set last: a retried attempt starts from scratch and overwrites them all.
    stats.records_read = parser.records_read
    stats.inserted, stats.updated, stats.unchanged = inserted, updated, unchanged
    stats.rejects = parser.rejects


def _stage(conn: Connection, rows: Iterator[StationRow]) -> None:
    while batch := list(itertools.islice(rows, BATCH_ROWS)):
        conn.execute(insert(_staging), [row.as_dict() for row in batch])


def _joined() -> Any:
    return _staging.outerjoin(stations, stations.c.station_id == _staging.c.station_id)


def _comparable(column: Any) -> Any:
    # Byte for byte: MySQL's default collations ignore case, so a name corrected only in case
    # would otherwise count as unchanged there (and never be written) but not on SQLite.
    return cast(column, LargeBinary) if isinstance(column.type, String) else column


def _same() -> Any:
    return same_values(
        [_comparable(_staging.c[name]) for name in VALUE_COLUMNS],
        [_comparable(stations.c[name]) for name in VALUE_COLUMNS],
    )


def _compare(conn: Connection) -> tuple[int, int, int]:
    """(inserted, updated, unchanged): staged stations that are new, differ, or are the same."""
    is_new = stations.c.station_id.is_(None)
    is_same = and_(stations.c.station_id.is_not(None), _same())
    query = select(
        func.count(),
        func.coalesce(func.sum(case((is_new, 1), else_=0)), 0),
        func.coalesce(func.sum(case((is_same, 1), else_=0)), 0),
    ).select_from(_joined())
    total, inserted, unchanged = (int(n) for n in conn.execute(query).one())
    return inserted, total - inserted - unchanged, unchanged


def _upsert_changed(conn: Connection) -> None:
    columns = ["station_id", *VALUE_COLUMNS]
    changed = (
        select(*(_staging.c[name] for name in columns))
        .select_from(_joined())
        # A WHERE clause also keeps SQLite from reading ON CONFLICT as the join's ON.
        .where(or_(stations.c.station_id.is_(None), ~_same()))
    )
    stmt = upsert(conn, stations, update_columns=VALUE_COLUMNS).from_select(columns, changed)
    conn.execute(stmt)


def _log_rejects(stats: StationLoadStats) -> None:
    for reject in stats.rejects[:REJECTS_LOGGED]:
        log.warning(
            "%s:%d: rejected: %s",
            stats.source_uri,
            reject.line_no,
            reject.reason,
            extra={
                "event": "reject",
                "source": stats.source_uri,
                "line_no": reject.line_no,
                "reason": reject.reason,
            },
        )
    hidden = stats.rejected - REJECTS_LOGGED
    if hidden > 0:
        log.warning(
            "%s: %d more rejected lines (all are in the table ingestion_rejects)",
            stats.source_uri,
            hidden,
        )


def _log_file(stats: StationLoadStats) -> None:
    fields: dict[str, object] = {
        "event": "file",
        "status": "skipped" if stats.skipped else "loaded",
        "source": stats.source_uri,
        "station_id": LEDGER_SUBJECT,
        "content_sha256": stats.content_sha256,
    }
    if stats.unread:
        fields["object_unchanged"] = True
        message = f"{stats.source_uri}: skipped (object unchanged since it was read: same ETag)"
    elif stats.skipped:
        message = f"{stats.source_uri}: skipped (content already loaded)"
    else:
        fields.update(
            records_read=stats.records_read,
            records_inserted=stats.inserted,
            records_updated=stats.updated,
            records_unchanged=stats.unchanged,
            records_rejected=stats.rejected,
        )
        message = (
            f"{stats.source_uri}: loaded {stats.records_read} stations ({stats.inserted} "
            f"inserted, {stats.updated} updated, {stats.unchanged} unchanged, "
            f"{stats.rejected} rejected)"
        )
    log.info(message, extra=fields)
