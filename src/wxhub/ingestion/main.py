"""The ingestion step: read, hash, parse and load every source file, one transaction a file.

Reading and hashing happen here, in file order; a file whose (station, content hash) is in
the ledger is skipped without being parsed, and an S3 object whose listed ETag and size are
those last read at its URI is skipped without even being read. Parsing, the CPU-bound part,
runs in a worker process a few files ahead while this process loads the previous file into
the database, so the two cores of a small machine work at once. Loading a file, its ledger
entry, its rejects and its aggregation queue entries commit together: a run killed at any
moment leaves whole files only, and the next run picks up from there.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from wxhub.db.engine import is_connection_failure
from wxhub.db.retry import DEFAULT_RETRY_S, with_retries
from wxhub.db.schema import bump_data_version
from wxhub.ingestion import ledger
from wxhub.ingestion.loader import LoadCounts, Loader, loader_class, make_loader
from wxhub.ingestion.parser import ParsedFile, PayloadFormat, parse_for_loading
from wxhub.ingestion.sources import SourceFile
from wxhub.observability import progress

log = logging.getLogger(__name__)

REJECTS_LOGGED_PER_FILE = 20
# Files parsed ahead of the loader: enough to hide parsing, bounded in memory.
IN_FLIGHT_FILES = 4


@dataclass(frozen=True)
class _Known:
    """What the ledger knew when the run started (nothing, with ``--force``)."""

    files: frozenset[tuple[str, str]] = frozenset()
    objects: dict[tuple[str, str, int], str] = field(default_factory=dict)

    def object_content(self, source: SourceFile) -> str | None:
        """The content hash of an object read before at this version, if it was."""
        version = source.version
        if version is None:
            return None
        key = (ledger.uri_key(source.uri), version.etag, version.size_bytes)
        return self.objects.get(key)


@dataclass
class _Item:
    """One source file on its way through read -> hash -> parse -> load."""

    source: SourceFile
    sha256: str = ""
    size_bytes: int = 0
    skipped: bool = False
    unread: bool = False  # skipped on its listed version, before any read
    error: str | None = None
    data: bytes | None = None
    parsed: ParsedFile | None = None
    future: Future[ParsedFile] | None = None

    def result(self) -> _Item:
        if self.future is not None:
            try:
                self.parsed = self.future.result()
            except Exception as exc:  # a parser bug must fail this file, not the run
                log.exception("parsing %s failed", self.source.uri)
                self.error = f"cannot parse: {exc}"
            self.future = None
        return self


def ingest(
    engine: Engine,
    sources: Sequence[SourceFile],
    *,
    run_id: int,
    force: bool = False,
    pool: ProcessPoolExecutor | None = None,
    retry_s: float = DEFAULT_RETRY_S,
) -> ledger.RunStats:
    """Load ``sources`` in order; a file that fails is reported and the others still load.

    With a ``pool`` (see :mod:`wxhub.ingestion.workers`), files are parsed there, a few
    ahead of the loader; without one, here. A file whose load fails because the database
    went away is loaded again on a new connection once it answers (for ``retry_s`` at most).
    """
    stats = ledger.RunStats(files_seen=len(sources))
    known = with_retries(
        engine, lambda: _known(engine, force), what="reading the ledger", budget_s=retry_s
    )
    session = _LoaderSession(engine)
    try:
        items = _prepared(
            sources, known, pool=pool, payload_format=loader_class(engine).payload_format
        )
        with progress(len(sources), "Ingesting") as advance:
            for item in items:
                if item.skipped:
                    stats.files_skipped += 1
                    if not item.unread and item.source.version is not None:
                        _remember_object(session, item)
                    _log_file(item, "skipped")
                elif item.error is not None:
                    _fail(stats, item, item.error)
                else:
                    # A type-narrowing invariant, not a check: set for every loaded item.
                    assert item.parsed is not None  # noqa: S101  # nosec B101
                    parsed = item.parsed
                    with_retries(
                        engine,
                        lambda: _load(session, item, parsed, run_id=run_id, stats=stats),  # noqa: B023  (called at once)
                        what=f"loading {item.source.uri}",
                        budget_s=retry_s,
                    )
                advance(1)
    finally:
        session.close()
    return stats


def _known(engine: Engine, force: bool) -> _Known:
    if force:
        return _Known()
    with engine.connect() as conn:
        return _Known(ledger.known_files(conn), ledger.known_objects(conn))


class _LoaderSession:
    """The connection and loader files are loaded with, opened again after a lost connection
    (the loader's staging table lives and dies with its connection)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._loader: Loader | None = None

    def loader(self) -> Loader:
        if self._loader is None:
            self._loader = make_loader(self.connection())
        return self._loader

    def connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.engine.connect()
        return self._conn

    def close(self) -> None:
        conn, self._conn, self._loader = self._conn, None, None
        if conn is not None:
            try:
                conn.close()
            except DBAPIError:  # already gone with the server
                conn.invalidate()


def _load(
    session: _LoaderSession,
    item: _Item,
    parsed: ParsedFile,
    *,
    run_id: int,
    stats: ledger.RunStats,
) -> None:
    started = time.perf_counter()
    try:
        loader = session.loader()
        conn = session.connection()
        with conn.begin():
            counts = loader.load(parsed)
            if counts.inserted or counts.updated:
                bump_data_version(conn)
            file_id = ledger.record_file(
                conn,
                run_id=run_id,
                station_id=parsed.station_id,
                content_sha256=item.sha256,
                source_uri=item.source.uri,
                size_bytes=item.size_bytes,
                records_read=parsed.records_read,
                inserted=counts.inserted,
                updated=counts.updated,
                unchanged=counts.unchanged,
                rejects=parsed.rejects,
            )
            if item.source.version is not None:
                ledger.record_object(
                    conn, source_uri=item.source.uri, version=item.source.version, file_id=file_id
                )
    except DBAPIError as exc:
        if is_connection_failure(exc):
            session.close()
            raise  # the database went away: with_retries loads the file again when it is back
        _fail(stats, item, f"database refused the file: {exc.orig}")
        return
    except SQLAlchemyError as exc:
        _fail(stats, item, f"database refused the file: {exc}")
        return
    except OSError as exc:  # e.g. no space left for the bulk-load file: this file alone fails
        _fail(stats, item, f"cannot stage the file for loading: {exc.strerror or exc}")
        return
    stats.files_loaded += 1
    stats.records_read += parsed.records_read
    stats.records_inserted += counts.inserted
    stats.records_updated += counts.updated
    stats.records_unchanged += counts.unchanged
    stats.records_rejected += len(parsed.rejects)
    _log_rejects(item, parsed)
    _log_file(item, "loaded", parsed, counts, load_ms=(time.perf_counter() - started) * 1000)


def _remember_object(session: _LoaderSession, item: _Item) -> None:
    """An object read again for known content (a new ETag): record its version, so the next
    run skips it before reading. Only bookkeeping: if it fails, the next run reads it again."""
    version = item.source.version
    assert version is not None  # noqa: S101  (only called for objects)  # nosec B101
    try:
        conn = session.connection()
        with conn.begin():
            file_id = ledger.file_id_of(conn, item.source.station_id, item.sha256)
            if file_id is not None:
                ledger.record_object(
                    conn, source_uri=item.source.uri, version=version, file_id=file_id
                )
    except DBAPIError as exc:
        if is_connection_failure(exc):
            session.close()  # the next file's load reconnects (and retries) as needed
        log.warning("%s: could not record its version: %s", item.source.uri, exc.orig)
    except SQLAlchemyError as exc:
        log.warning("%s: could not record its version: %s", item.source.uri, exc)


def _prepared(
    sources: Sequence[SourceFile],
    known: _Known,
    *,
    pool: ProcessPoolExecutor | None,
    payload_format: PayloadFormat,
) -> Iterator[_Item]:
    """Items in source order, read and hashed here, parsed here or in worker processes."""
    window: deque[_Item] = deque()
    in_flight = IN_FLIGHT_FILES if pool is not None else 1
    for source in sources:
        item = _read(source, known)
        if item.data is not None:
            raw, item.data = item.data, None
            if pool is not None:
                item.future = pool.submit(parse_for_loading, raw, source.station_id, payload_format)
            else:
                item.parsed = _parse_safely(item, raw, payload_format)
        window.append(item)
        while window and (len(window) > in_flight or _ready(window[0])):
            yield window.popleft().result()
    while window:
        yield window.popleft().result()


def _read(source: SourceFile, known: _Known) -> _Item:
    item = _Item(source)
    listed_sha = known.object_content(source)
    if listed_sha is not None:
        item.sha256, item.skipped, item.unread = listed_sha, True, True
        return item
    try:
        data = source.read_bytes()
    except OSError as exc:
        item.error = f"cannot read: {exc.strerror or exc}"
        return item
    item.size_bytes = len(data)
    item.sha256 = hashlib.sha256(data).hexdigest()
    if (source.station_id, item.sha256) in known.files:
        item.skipped = True
    else:
        item.data = data
    return item


def _ready(item: _Item) -> bool:
    return item.future is None or item.future.done()


def _parse_safely(item: _Item, data: bytes, payload_format: PayloadFormat) -> ParsedFile | None:
    try:
        return parse_for_loading(data, item.source.station_id, payload_format)
    except Exception as exc:  # a parser bug must fail this file, not the run
        log.exception("parsing %s failed", item.source.uri)
        item.error = f"cannot parse: {exc}"
        return None


def _fail(stats: ledger.RunStats, item: _Item, reason: str) -> None:
    stats.files_failed += 1
    stats.failures.append(f"{item.source.uri}: {reason}")
    log.error(
        "%s: failed: %s",
        item.source.uri,
        reason,
        extra={"event": "file", "status": "failed", "source": item.source.uri, "error": reason},
    )


def _log_rejects(item: _Item, parsed: ParsedFile) -> None:
    for reject in parsed.rejects[:REJECTS_LOGGED_PER_FILE]:
        log.warning(
            "%s:%d: rejected: %s",
            item.source.uri,
            reject.line_no,
            reject.reason,
            extra={
                "event": "reject",
                "source": item.source.uri,
                "line_no": reject.line_no,
                "reason": reject.reason,
            },
        )
    hidden = len(parsed.rejects) - REJECTS_LOGGED_PER_FILE
    if hidden > 0:
        log.warning(
            "%s: %d more rejected lines (all are in the table ingestion_rejects)",
            item.source.uri,
            hidden,
        )


def _log_file(
    item: _Item,
    status: str,
    parsed: ParsedFile | None = None,
    counts: LoadCounts | None = None,
    *,
    load_ms: float | None = None,
) -> None:
    fields: dict[str, object] = {
        "event": "file",
        "status": status,
        "source": item.source.uri,
        "station_id": item.source.station_id,
        "content_sha256": item.sha256,
    }
    if load_ms is not None:
        fields["load_ms"] = round(load_ms, 1)  # time in the database, in this file's transaction
    if parsed is not None and counts is not None:
        fields.update(
            records_read=parsed.records_read,
            records_inserted=counts.inserted,
            records_updated=counts.updated,
            records_unchanged=counts.unchanged,
            records_rejected=len(parsed.rejects),
        )
        message = (
            f"{item.source.uri}: {status} {parsed.records_read} records "
            f"({counts.inserted} inserted, {counts.updated} updated, "
            f"{counts.unchanged} unchanged, {len(parsed.rejects)} rejected)"
        )
    elif item.unread:
        fields["object_unchanged"] = True
        message = f"{item.source.uri}: {status} (object unchanged since it was read: same ETag)"
    else:
        message = f"{item.source.uri}: {status} (content already ingested)"
    log.info(message, extra=fields)
