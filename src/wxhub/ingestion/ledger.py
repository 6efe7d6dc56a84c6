"""The ledger of loaded files, their rejected lines, and the history of runs.

A file's ledger entry is written in the same transaction as its rows, so after a crash the
ledger says exactly which files are in the table: a re-run skips those and loads the rest.
For S3 objects the ledger also keeps the version (ETag and size) last read at each URI, so
the next listing can skip an unchanged object before reading it. For a big file (a by-year
file) it keeps a digest of each station's lines at the last load, so a reload parses only the
stations whose lines changed (:mod:`wxhub.ingestion.digests`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, delete, insert, select, update

from wxhub.db.schema import (
    ingested_files,
    ingested_objects,
    ingested_station_digests,
    ingestion_rejects,
    job_runs,
)
from wxhub.ingestion.rows import Reject
from wxhub.ingestion.sources import ObjectVersion

URI_MAX = 1024
# Enough to explain any file; a file of garbage still counts every reject in the ledger.
MAX_STORED_REJECTS_PER_FILE = 10_000


def utcnow() -> dt.datetime:
    """Naive UTC, as stored in DATETIME columns (the session time zone is UTC)."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


@dataclass
class RunStats:
    """The counts of one command, as logged and as stored in ``job_runs``."""

    files_seen: int = 0
    files_skipped: int = 0
    files_loaded: int = 0
    files_failed: int = 0
    records_read: int = 0
    records_inserted: int = 0
    records_updated: int = 0
    records_unchanged: int = 0
    records_rejected: int = 0
    station_years_aggregated: int = 0
    # GHCN-Daily: values NOAA's quality control flagged (not loaded), per flag letter; values
    # of elements other than TMAX, TMIN and PRCP; lines of stations the run did not select.
    qc_removed: Counter[str] = field(default_factory=Counter)
    values_other_elements: int = 0
    lines_not_selected: int = 0
    # Lines of big files' stations unchanged since the file's last load (not parsed again).
    lines_unchanged: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def records_ingested(self) -> int:
        """Valid records of the loaded files, now in the table (inserted, updated or same)."""
        return self.records_inserted + self.records_updated + self.records_unchanged

    def counts(self) -> dict[str, int | str]:
        """The columns of ``job_runs`` these counts fill."""
        values: dict[str, int | str] = asdict(self)
        for name in ("failures", "qc_removed", "lines_not_selected", "lines_unchanged"):
            values.pop(name)
        values["values_qc_removed"] = sum(self.qc_removed.values())
        values["qc_removed_by_flag"] = flags_json(self.qc_removed)
        return values

    def log_fields(self) -> dict[str, object]:
        """The counts as the summary log line carries them."""
        fields: dict[str, object] = dict(self.counts())
        fields["qc_removed_by_flag"] = dict(sorted(self.qc_removed.items()))
        fields["lines_not_selected"] = self.lines_not_selected
        fields["lines_unchanged"] = self.lines_unchanged
        return fields


def flags_json(qc_removed: Counter[str]) -> str:
    """Per-flag counts as stored: '{"D":2,"G":1}' (sorted, so equal counts compare equal)."""
    return json.dumps(dict(sorted(qc_removed.items())), separators=(",", ":"))


def known_files(conn: Connection) -> frozenset[tuple[str, str]]:
    """(station_id, content_sha256) of every file already loaded."""
    rows = conn.execute(select(ingested_files.c.station_id, ingested_files.c.content_sha256))
    return frozenset((station_id, sha) for station_id, sha in rows)


def uri_key(source_uri: str) -> str:
    """The key of an object URI in ``ingested_objects``: its SHA-256, of any length."""
    return hashlib.sha256(source_uri.encode()).hexdigest()


def known_objects(conn: Connection) -> dict[tuple[str, str, int], str]:
    """(URI key, ETag, size) -> content SHA-256 of every object version already read."""
    query = select(
        ingested_objects.c.source_uri_sha256,
        ingested_objects.c.etag,
        ingested_objects.c.size_bytes,
        ingested_files.c.content_sha256,
    ).join(ingested_files, ingested_objects.c.file_id == ingested_files.c.id)
    return {(key, etag, int(size)): sha for key, etag, size, sha in conn.execute(query)}


def object_content(conn: Connection, source_uri: str, version: ObjectVersion) -> str | None:
    """The content SHA-256 of the object at ``source_uri``, if it was last read at ``version``
    (one object's lookup, where :func:`known_objects` reads them all)."""
    query = (
        select(ingested_files.c.content_sha256)
        .join(ingested_objects, ingested_objects.c.file_id == ingested_files.c.id)
        .where(
            ingested_objects.c.source_uri_sha256 == uri_key(source_uri),
            ingested_objects.c.etag == version.etag,
            ingested_objects.c.size_bytes == version.size_bytes,
        )
    )
    sha = conn.execute(query).scalar()
    return None if sha is None else str(sha)


def file_id_of(conn: Connection, station_id: str, content_sha256: str) -> int | None:
    """The ledger id of a file already loaded, if it is."""
    key = (ingested_files.c.station_id == station_id) & (
        ingested_files.c.content_sha256 == content_sha256
    )
    file_id = conn.execute(select(ingested_files.c.id).where(key)).scalar()
    return None if file_id is None else int(file_id)


def last_size(conn: Connection, subject: str) -> int | None:
    """The size (decompressed) of the file last loaded under ``subject``, if any."""
    query = (
        select(ingested_files.c.size_bytes)
        .where(ingested_files.c.station_id == subject)
        .order_by(ingested_files.c.id.desc())
        .limit(1)
    )
    size = conn.execute(query).scalar()
    return None if size is None else int(size)


def station_digests(conn: Connection, subject: str) -> dict[str, tuple[int, int]]:
    """station -> (lines, digest) of the last load of the big file ``subject``; empty if
    there is none (never loaded, or loaded before digests were kept)."""
    t = ingested_station_digests
    rows = conn.execute(select(t.c.station_id, t.c.lines, t.c.digest).where(t.c.subject == subject))
    return {station: (int(lines), int(digest)) for station, lines, digest in rows}


def record_station_digests(
    conn: Connection,
    subject: str,
    new: Mapping[str, tuple[int, int]],
    stored: Mapping[str, tuple[int, int]],
) -> None:
    """Make the stored digests of ``subject`` (``stored``, as read in this transaction) those
    of ``new``, writing only the stations that differ."""
    t = ingested_station_digests
    gone = [station for station in stored if station not in new]
    moved = [station for station, value in new.items() if stored.get(station) != value]
    if gone or moved:
        stale = [*gone, *(station for station in moved if station in stored)]
        for start in range(0, len(stale), 1000):
            batch = stale[start : start + 1000]
            conn.execute(delete(t).where(t.c.subject == subject, t.c.station_id.in_(batch)))
    if moved:
        rows = [
            {"subject": subject, "station_id": s, "lines": new[s][0], "digest": new[s][1]}
            for s in moved
        ]
        conn.execute(insert(t), rows)


def record_object(
    conn: Connection, *, source_uri: str, version: ObjectVersion, file_id: int
) -> None:
    """Remember that the object at ``source_uri``, at ``version``, holds ledger file ``file_id``."""
    key = uri_key(source_uri)
    conn.execute(delete(ingested_objects).where(ingested_objects.c.source_uri_sha256 == key))
    conn.execute(
        insert(ingested_objects).values(
            source_uri_sha256=key,
            source_uri=source_uri[-URI_MAX:],
            etag=version.etag,
            size_bytes=version.size_bytes,
            file_id=file_id,
            recorded_at=utcnow(),
        )
    )


def record_file(
    conn: Connection,
    *,
    run_id: int,
    station_id: str,
    content_sha256: str,
    source_uri: str,
    size_bytes: int,
    records_read: int,
    inserted: int,
    updated: int,
    unchanged: int,
    rejects: Sequence[Reject],
    rejected: int | None = None,
    qc_removed: Counter[str] | None = None,
    other_values: int = 0,
) -> int:
    """Write (or, for a forced re-read, replace) a file's ledger entry and its rejects.

    ``rejected`` counts the rejected lines when ``rejects`` holds only the first of them (a
    streamed file keeps at most MAX_STORED_REJECTS_PER_FILE).
    """
    flags = qc_removed or Counter()
    values = {
        "source_uri": source_uri[-URI_MAX:],
        "size_bytes": size_bytes,
        "run_id": run_id,
        "ingested_at": utcnow(),
        "records_read": records_read,
        "records_inserted": inserted,
        "records_updated": updated,
        "records_unchanged": unchanged,
        "records_rejected": len(rejects) if rejected is None else rejected,
        "values_qc_removed": sum(flags.values()),
        "qc_removed_by_flag": flags_json(flags),
        "values_other_elements": other_values,
    }
    file_id = file_id_of(conn, station_id, content_sha256)
    if file_id is None:
        file_id = _inserted_id(
            conn.execute(
                insert(ingested_files).values(
                    station_id=station_id, content_sha256=content_sha256, **values
                )
            )
        )
    else:
        conn.execute(update(ingested_files).where(ingested_files.c.id == file_id).values(values))
        conn.execute(delete(ingestion_rejects).where(ingestion_rejects.c.file_id == file_id))
    if rejects:
        conn.execute(
            insert(ingestion_rejects),
            [
                {
                    "file_id": file_id,
                    "line_no": r.line_no,
                    "reason": r.reason,
                    "line_text": r.line_text,
                }
                for r in rejects[:MAX_STORED_REJECTS_PER_FILE]
            ],
        )
    return int(file_id)


def _inserted_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise RuntimeError("the database returned no id for the inserted row")
    return int(key[0])


def start_run(engine: Engine, command: str) -> tuple[int, dt.datetime]:
    """Record that a command started; returns its run id and start time."""
    started_at = utcnow()
    with engine.begin() as conn:
        run_id = _inserted_id(
            conn.execute(
                insert(job_runs).values(command=command, status="running", started_at=started_at)
            )
        )
    return int(run_id), started_at


def finish_run(engine: Engine, run_id: int, status: str, stats: RunStats) -> dt.datetime:
    """Record a command's outcome and counts."""
    finished_at = utcnow()
    with engine.begin() as conn:
        conn.execute(
            update(job_runs)
            .where(job_runs.c.id == run_id)
            .values(status=status, finished_at=finished_at, **stats.counts())
        )
    return finished_at
