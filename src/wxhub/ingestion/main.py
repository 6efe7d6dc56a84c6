"""The ingestion step: read, hash, parse and load every source file, one transaction a file.

Reading and hashing happen here, in file order; a file whose (subject, content hash) is in
the ledger is skipped without being parsed, and an S3 object whose listed ETag and size are
those last read at its URI is skipped without even being read. A file's format is recognised
from its first bytes (or forced). Parsing, the CPU-bound part, runs in a worker process a
few files ahead while this process loads the previous file into the database, so the two
cores of a small machine work at once. Loading a file, its ledger entry, its rejects and its
aggregation queue entries commit together: a run killed at any moment leaves whole files
only, and the next run picks up from there.

A file too big to read whole (a GHCN-Daily by-year file, about a gigabyte) is hashed first,
in one streaming read: content already in the ledger is skipped then, before any parsing (its
cost is that of reading it: decompressing and hashing, a twentieth of loading it). Otherwise
it is read again and streamed: in chunks of whole lines, each parsed (in the worker) and
appended to the loader's staging, then compared with the table once all of it is staged,
still in one transaction. Memory stays that of a few chunks whatever the file's size. The
second read hashes again and must find the same content (a local file may change in between:
it is then not loaded this run; an S3 object cannot: both reads ask for the listed ETag).

A big file's first load also sums a digest of each station's lines, in the parse
(:mod:`wxhub.ingestion.digests`), and records them in the load's transaction. When a file
loaded before comes back changed (and about the same size: not a night that adds a day for
every station), a read of its own sums its digests first, and the load then parses and stages
only the lines of the stations whose digest moved: a by-year file with a few corrections costs
three reads and the checksums, not a full load. ``--force`` compares every station again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from wxhub.db.engine import is_connection_failure
from wxhub.db.retry import DEFAULT_RETRY_S, with_retries
from wxhub.db.schema import bump_data_version
from wxhub.ingestion import ledger
from wxhub.ingestion.digests import OTHER_LINES, FileDigests, changed_stations, chunk_digests
from wxhub.ingestion.formats import (
    CHUNKED,
    SNIFF_BYTES,
    Format,
    parse_for_loading,
    parse_stations_for_loading,
    sniff,
)
from wxhub.ingestion.loader import LoadCounts, Loader, loader_class, make_loader
from wxhub.ingestion.rows import ParsedFile, PayloadFormat, Reject
from wxhub.ingestion.selection import StationFilter
from wxhub.ingestion.sources import MAX_FILE_BYTES, SourceFile, read_up_to, stem_of
from wxhub.ingestion.spool import Spool
from wxhub.observability import progress

log = logging.getLogger(__name__)

REJECTS_LOGGED_PER_FILE = 20
# Files parsed ahead of the loader: enough to hide parsing, bounded in memory (by count and
# by bytes: a by-station file is a few MB, but one may be up to MAX_FILE_BYTES).
IN_FLIGHT_FILES = 4
IN_FLIGHT_BYTES = 64 * 1024 * 1024
# A streamed file is parsed in chunks of whole lines of about this size, a few ahead.
CHUNK_BYTES = 4 * 1024 * 1024
IN_FLIGHT_CHUNKS = 2
# A reload parses only the changed stations' lines, unless this share of them or more changed
# (then picking lines out costs more than it saves).
RELOAD_ALL_SHARE = 0.9
# ... and it sums the digests only if the file's size moved by at most this share since its
# last load: a night that adds a day for every station grows the file by 1/365 or more, and
# would pay for a read of digests that all moved.
RELOAD_DIGESTS_MAX_GROWTH = 0.002


@dataclass(frozen=True)
class _Known:
    """What the ledger knew when the run started (nothing, with ``--force``)."""

    files: frozenset[tuple[str, str]] = frozenset()
    objects: dict[tuple[str, str, int], str] = field(default_factory=dict)
    # Whether a big file's stored station digests may spare unchanged stations (not with
    # --force, which compares everything again).
    digests: bool = True

    def object_content(self, item: _Item) -> str | None:
        """The content hash of an object read before at this version, if it was."""
        version = item.source.version
        if version is None:
            return None
        return self.objects.get((ledger.uri_key(item.object_key), version.etag, version.size_bytes))


@dataclass(frozen=True)
class _Plan:
    """How this run reads its files: the format (None: recognised per file), the stations it
    keeps, and the loader's payload form."""

    fmt: Format | None
    selection: StationFilter | None
    payload_format: PayloadFormat
    pool: ProcessPoolExecutor | None
    spool: Spool = field(default_factory=Spool)


@dataclass
class _Item:
    """One source file on its way through read -> hash -> parse -> load."""

    source: SourceFile
    # The ledger's key for the file: its station, or for a file of many stations its name
    # (with the selection's fingerprint when only some stations' lines are kept).
    subject: str
    # The URI the ETag ledger keys the object by (also with the fingerprint, as above).
    object_key: str
    fmt: Format | None = None
    sha256: str = ""
    size_bytes: int = 0
    skipped: bool = False
    unread: bool = False  # skipped on its listed version, before any read
    error: str | None = None
    data: bytes | None = None
    parsed: ParsedFile | None = None
    future: Future[ParsedFile] | None = None
    # A file too big to read whole: hashed already, read again chunk by chunk when loaded.
    streamed: bool = False
    hashed_size: int = 0  # its size as the hash read found it

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
    fmt: Format | None = None,
    selection: StationFilter | None = None,
) -> ledger.RunStats:
    """Load ``sources`` in order; a file that fails is reported and the others still load.

    With a ``pool`` (see :mod:`wxhub.ingestion.workers`), files are parsed there, a few
    ahead of the loader; without one, here. A file whose load fails because the database
    went away is loaded again on a new connection once it answers (for ``retry_s`` at most).
    ``fmt`` forces a format; ``selection`` keeps only some stations' lines (the sources are
    expected to be chosen by name already).
    """
    stats = ledger.RunStats(files_seen=len(sources))
    known = with_retries(
        engine, lambda: _known(engine, force), what="reading the ledger", budget_s=retry_s
    )
    if selection is not None and selection.keeps_everything:
        selection = None
    plan = _Plan(fmt, selection, loader_class(engine).payload_format, pool)
    session = _LoaderSession(engine)
    try:
        with progress(len(sources), "Ingesting") as advance:
            for item in _prepared(sources, known, plan):
                try:
                    _ingest_one(
                        session, item, known, plan, run_id=run_id, stats=stats, retry_s=retry_s
                    )
                finally:
                    plan.spool.release(item.source)
                advance(1)
    finally:
        session.close()
        plan.spool.close()
    return stats


def _ingest_one(
    session: _LoaderSession,
    item: _Item,
    known: _Known,
    plan: _Plan,
    *,
    run_id: int,
    stats: ledger.RunStats,
    retry_s: float,
) -> None:
    if item.skipped:
        stats.files_skipped += 1
        if not item.unread and item.source.version is not None:
            _remember_object(session, item)
        _log_file(item, "skipped")
    elif item.error is not None:
        _fail(stats, item, item.error)
    elif item.streamed:
        with_retries(
            session.engine,
            lambda: _load_streamed(session, item, known, plan, run_id=run_id, stats=stats),
            what=f"loading {item.source.uri}",
            budget_s=retry_s,
        )
    else:
        # A type-narrowing invariant, not a check: set for every loaded item.
        assert item.parsed is not None  # noqa: S101  # nosec B101
        parsed = item.parsed
        with_retries(
            session.engine,
            lambda: _load(session, item, parsed, run_id=run_id, stats=stats),
            what=f"loading {item.source.uri}",
            budget_s=retry_s,
        )


def _known(engine: Engine, force: bool) -> _Known:
    if force:
        return _Known(digests=False)
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
            _record(conn, item, run_id, counts, _Totals.of(parsed))
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
    _loaded(stats, item, counts, _Totals.of(parsed), started)


def _load_streamed(
    session: _LoaderSession,
    item: _Item,
    known: _Known,
    plan: _Plan,
    *,
    run_id: int,
    stats: ledger.RunStats,
) -> None:
    """Stream a big file into the staging table chunk by chunk, then apply it, in one
    transaction; a retry (the database went away) reads the file again from its start."""
    started = time.perf_counter()
    first_read_sha = item.sha256
    try:
        conn = session.connection()
        reload = _plan_reload(conn, item, known, plan)
        if reload.digested_sha not in (None, first_read_sha):
            _fail(stats, item, _CHANGED_WHILE_READ)
            return
        stored, digests, stations = reload.stored, reload.digests, reload.stations
        item.size_bytes = 0
        with item.source.open() as stream:
            loader = session.loader()
            with conn.begin() as transaction:
                loader.start_staging()
                hasher = hashlib.sha256()
                # Lines of changed stations not selected: left out of the parse, but they
                # changed (the parse counts the lines it leaves out as unchanged).
                left_out = reload.lines_not_selected
                totals = _Totals(lines_not_selected=left_out, lines_unchanged=-left_out)
                summed = FileDigests()
                for parsed in _parsed_chunks(
                    item, stream, hasher, plan, stations, digest=digests is None
                ):
                    loader.stage(parsed)
                    totals.add(parsed)
                    if parsed.line_digests is not None:
                        summed.add(parsed.line_digests)
                item.sha256 = hasher.hexdigest()
                if item.sha256 != first_read_sha:
                    transaction.rollback()
                    _fail(stats, item, _CHANGED_WHILE_READ)
                    return
                if (item.subject, item.sha256) in known.files:
                    transaction.rollback()
                    item.skipped = True
                else:
                    counts = loader.apply_staging()
                    _record(conn, item, run_id, counts, totals)
                    new = digests if digests is not None else summed.by_station()
                    ledger.record_station_digests(conn, item.subject, new, stored)
    except DBAPIError as exc:
        if is_connection_failure(exc):
            session.close()
            raise
        _fail(stats, item, f"database refused the file: {exc.orig}")
        return
    except SQLAlchemyError as exc:
        _fail(stats, item, f"database refused the file: {exc}")
        return
    except OSError as exc:  # unreadable midway, or no space left to stage a chunk
        _fail(stats, item, f"cannot read or stage the file: {exc.strerror or exc}")
        return
    if item.skipped:
        stats.files_skipped += 1
        if item.source.version is not None:
            _remember_object(session, item)
        _log_file(item, "skipped")
        return
    _loaded(stats, item, counts, totals, started)


_CHANGED_WHILE_READ = (
    "the file changed while it was read (two reads, two SHA-256s): not loaded; the next run "
    "loads it"
)


@dataclass(frozen=True)
class _Reload:
    """What a big file's load knows of its last load: the stored digests, and when there are
    some (a reload), the file's own from a read of their own and the stations to parse."""

    stored: dict[str, tuple[int, int]]
    digests: dict[str, tuple[int, int]] | None = None
    digested_sha: str | None = None
    stations: frozenset[str] | None = None
    # Lines of changed stations the run's selection leaves out: not parsed, not "unchanged".
    lines_not_selected: int = 0


def _plan_reload(conn: Connection, item: _Item, known: _Known, plan: _Plan) -> _Reload:
    with conn.begin():  # the job lock keeps them as they are until this file's commit
        stored = ledger.station_digests(conn, item.subject)
        last_size = ledger.last_size(conn, item.subject)
    if not stored or not known.digests or last_size is None:
        return _Reload(stored)
    if abs(item.hashed_size - last_size) > RELOAD_DIGESTS_MAX_GROWTH * last_size:
        return _Reload(stored)  # most stations have new lines: parse them all
    sha, digests = _digest_pass(item, plan)
    stations = _stations_to_parse(digests, stored)
    if stations is None or plan.selection is None:
        return _Reload(stored, digests, sha, stations)
    # The selection's own ledger subject holds these digests: a station it leaves out is
    # never loaded under it, so its lines need no parsing to be dropped.
    selection = plan.selection
    selected = frozenset(s for s in stations if s == OTHER_LINES or selection.accepts(s))
    left_out = sum(digests[s][0] for s in stations - selected)
    return _Reload(stored, digests, sha, selected, left_out)


def _digest_pass(item: _Item, plan: _Plan) -> tuple[str, dict[str, tuple[int, int]]]:
    """(SHA-256, station digests) of a big file, from a read of its own (parsing nothing).
    The digests cost more than the reading: chunks go to the worker, a few ahead, and while
    the worker is busy this process sums the next chunk itself instead of waiting."""
    hasher = hashlib.sha256()
    digests = FileDigests()
    pending: deque[Future[dict[bytes, int]]] = deque()
    sized = _Item(item.source, item.subject, item.object_key)  # the size is not this read's
    with item.source.open() as stream:
        for chunk, _ in _chunks(_pieces(stream), hasher, sized):
            while pending and pending[0].done():
                digests.add(pending.popleft().result())
            if plan.pool is None or len(pending) >= IN_FLIGHT_CHUNKS:
                digests.add(chunk_digests(chunk))
            else:
                pending.append(plan.pool.submit(chunk_digests, chunk))
    while pending:
        digests.add(pending.popleft().result())
    return hasher.hexdigest(), digests.by_station()


def _stations_to_parse(
    digests: dict[str, tuple[int, int]], stored: dict[str, tuple[int, int]]
) -> frozenset[str] | None:
    """The stations whose lines a reload parses (those whose digest moved since the file's
    last load), or None for all of them, when nearly all changed."""
    changed = changed_stations(digests, stored)
    if len(changed) >= RELOAD_ALL_SHARE * len(digests):
        return None
    return changed


def _parsed_chunks(
    item: _Item,
    stream: BinaryIO,
    hasher: Any,
    plan: _Plan,
    stations: frozenset[str] | None = None,
    *,
    digest: bool = False,
) -> Iterator[ParsedFile]:
    """The file's chunks parsed, in order, a few ahead in the worker process if there is one;
    only the lines of ``stations`` when given; with each chunk's line digests if ``digest``."""
    # A type-narrowing invariant: streamed items always have a chunked format.
    assert item.fmt is not None  # noqa: S101  # nosec B101
    fmt = item.fmt
    pending: deque[Future[ParsedFile] | ParsedFile] = deque()
    parse: Any = parse_for_loading
    kwargs: dict[str, Any] = {
        "name_station": stem_of(item.source.name),
        "selection": plan.selection,
    }
    if stations is not None:
        parse, kwargs["stations"] = parse_stations_for_loading, stations
    elif digest:
        kwargs["digest"] = True
    for chunk, first_line_no in _chunks(_pieces(stream), hasher, item):
        job = functools.partial(
            parse, chunk, fmt, plan.payload_format, first_line_no=first_line_no, **kwargs
        )
        pending.append(plan.pool.submit(job) if plan.pool is not None else job())
        while len(pending) > IN_FLIGHT_CHUNKS:
            yield _chunk_result(pending.popleft())
    while pending:
        yield _chunk_result(pending.popleft())


def _chunk_result(pending: Future[ParsedFile] | ParsedFile) -> ParsedFile:
    return pending.result() if isinstance(pending, Future) else pending


def _chunks(pieces: Iterable[bytes], hasher: Any, item: _Item) -> Iterator[tuple[bytes, int]]:
    """(chunk of whole lines, its first line's number), hashing and sizing the file."""
    line_no = 1
    carry = b""
    for piece in pieces:
        hasher.update(piece)
        item.size_bytes += len(piece)
        data = carry + piece
        end = data.rfind(b"\n") + 1
        if end == 0:
            carry = data  # a line longer than a chunk: keep reading until it ends
            continue
        carry = data[end:]
        yield data[:end], line_no
        line_no += data.count(b"\n", 0, end)
    if carry:
        yield carry, line_no


def _pieces(stream: BinaryIO) -> Iterator[bytes]:
    """The rest of the stream's bytes in pieces of about CHUNK_BYTES."""
    while piece := read_up_to(stream, CHUNK_BYTES):
        yield piece


@dataclass
class _Totals:
    """What the parser said of a file (the sum over its chunks when streamed)."""

    records_read: int = 0
    rejected: int = 0
    rejects: list[Reject] = field(default_factory=list)
    qc_removed: Counter[str] = field(default_factory=Counter)
    other_values: int = 0
    lines_not_selected: int = 0
    lines_unchanged: int = 0

    @classmethod
    def of(cls, parsed: ParsedFile) -> _Totals:
        totals = cls()
        totals.add(parsed)
        return totals

    def add(self, parsed: ParsedFile) -> None:
        self.records_read += parsed.records_read
        self.rejected += len(parsed.rejects)
        room = ledger.MAX_STORED_REJECTS_PER_FILE - len(self.rejects)
        self.rejects.extend(parsed.rejects[: max(room, 0)])
        self.qc_removed.update(parsed.qc_removed)
        self.other_values += parsed.other_values
        self.lines_not_selected += parsed.lines_not_selected
        self.lines_unchanged += parsed.lines_unchanged


def _record(
    conn: Connection, item: _Item, run_id: int, counts: LoadCounts, totals: _Totals
) -> None:
    """The file's ledger entry (and its object version), in the load's transaction."""
    if counts.inserted or counts.updated:
        bump_data_version(conn)
    file_id = ledger.record_file(
        conn,
        run_id=run_id,
        station_id=item.subject,
        content_sha256=item.sha256,
        source_uri=item.source.uri,
        size_bytes=item.size_bytes,
        records_read=totals.records_read,
        inserted=counts.inserted,
        updated=counts.updated,
        unchanged=counts.unchanged,
        rejects=totals.rejects,
        rejected=totals.rejected,
        qc_removed=totals.qc_removed,
        other_values=totals.other_values,
    )
    if item.source.version is not None:
        ledger.record_object(
            conn, source_uri=item.object_key, version=item.source.version, file_id=file_id
        )


def _loaded(
    stats: ledger.RunStats, item: _Item, counts: LoadCounts, totals: _Totals, started: float
) -> None:
    stats.files_loaded += 1
    stats.records_read += totals.records_read
    stats.records_inserted += counts.inserted
    stats.records_updated += counts.updated
    stats.records_unchanged += counts.unchanged
    stats.records_rejected += totals.rejected
    stats.qc_removed.update(totals.qc_removed)
    stats.values_other_elements += totals.other_values
    stats.lines_not_selected += totals.lines_not_selected
    stats.lines_unchanged += totals.lines_unchanged
    _log_rejects(item, totals)
    _log_file(item, "loaded", totals, counts, load_ms=(time.perf_counter() - started) * 1000)


def _remember_object(session: _LoaderSession, item: _Item) -> None:
    """An object read again for known content (a new ETag): record its version, so the next
    run skips it before reading. Only bookkeeping: if it fails, the next run reads it again."""
    version = item.source.version
    assert version is not None  # noqa: S101  (only called for objects)  # nosec B101
    try:
        conn = session.connection()
        with conn.begin():
            file_id = ledger.file_id_of(conn, item.subject, item.sha256)
            if file_id is not None:
                ledger.record_object(
                    conn, source_uri=item.object_key, version=version, file_id=file_id
                )
    except DBAPIError as exc:
        if is_connection_failure(exc):
            session.close()  # the next file's load reconnects (and retries) as needed
        log.warning("%s: could not record its version: %s", item.source.uri, exc.orig)
    except SQLAlchemyError as exc:
        log.warning("%s: could not record its version: %s", item.source.uri, exc)


def _prepared(sources: Sequence[SourceFile], known: _Known, plan: _Plan) -> Iterator[_Item]:
    """Items in source order, read and hashed here, parsed here or in worker processes."""
    window: deque[_Item] = deque()
    in_flight = IN_FLIGHT_FILES if plan.pool is not None else 1
    for source in sources:
        item = _read(_new_item(source, plan.selection), known, plan)
        if item.data is not None:
            raw, item.data = item.data, None
            item.size_bytes = len(raw)
            if plan.pool is not None:
                item.future = plan.pool.submit(
                    parse_for_loading,
                    raw,
                    item.fmt,  # type: ignore[arg-type]
                    plan.payload_format,
                    name_station=stem_of(source.name),
                    selection=plan.selection,
                )
            else:
                item.parsed = _parse_safely(item, raw, plan)
        window.append(item)
        while window and (
            len(window) > in_flight or _bytes(window) > IN_FLIGHT_BYTES or _ready(window[0])
        ):
            yield window.popleft().result()
    while window:
        yield window.popleft().result()


def _new_item(source: SourceFile, selection: StationFilter | None) -> _Item:
    if source.station_id is not None:
        return _Item(source, subject=source.station_id, object_key=source.uri)
    if selection is None:
        return _Item(source, subject=stem_of(source.name), object_key=source.uri)
    # A file of many stations read for some of them: another selection reads it again.
    fingerprint = selection.fingerprint()
    return _Item(
        source,
        subject=f"{stem_of(source.name)[:11]}@{fingerprint[:8]}",
        object_key=f"{source.uri}#{fingerprint[:16]}",
    )


def _bytes(window: deque[_Item]) -> int:
    """What the files being parsed hold in memory (a streamed file holds nothing yet)."""
    return sum(item.size_bytes for item in window if item.future is not None)


def _read(item: _Item, known: _Known, plan: _Plan) -> _Item:
    listed_sha = known.object_content(item)
    if listed_sha is not None:
        item.sha256, item.skipped, item.unread = listed_sha, True, True
        return item
    try:
        if plan.spool.wants(item.source):
            item.source = plan.spool.copy(item.source)  # a big object: downloaded once
        source = item.source
        stream = source.open()
        try:
            head = read_up_to(stream, MAX_FILE_BYTES + 1)
        except BaseException:
            stream.close()
            raise
    except OSError as exc:
        item.error = f"cannot read: {exc.strerror or exc}"
        return item
    item.fmt = plan.fmt or sniff(head[:SNIFF_BYTES], source.name)
    if len(head) > MAX_FILE_BYTES:
        if item.fmt not in CHUNKED:
            stream.close()
            item.error = (
                f"larger than {MAX_FILE_BYTES} bytes, too big for one station's file in the "
                f"{item.fmt} format"
            )
            return item
        try:
            item.sha256, item.size_bytes = _hash_rest(stream, head)
            item.hashed_size = item.size_bytes
        except OSError as exc:
            item.error = f"cannot read: {exc.strerror or exc}"
            return item
        # Content already loaded: skipped at the cost of reading it. Else loaded chunk by
        # chunk when its turn comes, from a second read.
        item.skipped = (item.subject, item.sha256) in known.files
        item.streamed = not item.skipped
        return item
    stream.close()
    item.size_bytes = len(head)
    item.sha256 = hashlib.sha256(head).hexdigest()
    if (item.subject, item.sha256) in known.files:
        item.skipped = True
    else:
        item.data = head
    return item


def _hash_rest(stream: BinaryIO, head: bytes) -> tuple[str, int]:
    """(sha256, size) of a file of which ``head`` was read: the rest is read in pieces, so
    memory does not grow with the file. Closes the stream."""
    hasher = hashlib.sha256(head)
    size = len(head)
    with stream:
        for piece in _pieces(stream):
            hasher.update(piece)
            size += len(piece)
    return hasher.hexdigest(), size


def _ready(item: _Item) -> bool:
    return item.future is None or item.future.done()


def _parse_safely(item: _Item, data: bytes, plan: _Plan) -> ParsedFile | None:
    try:
        return parse_for_loading(
            data,
            item.fmt,  # type: ignore[arg-type]
            plan.payload_format,
            name_station=stem_of(item.source.name),
            selection=plan.selection,
        )
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


def _log_rejects(item: _Item, totals: _Totals) -> None:
    for reject in totals.rejects[:REJECTS_LOGGED_PER_FILE]:
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
    hidden = totals.rejected - REJECTS_LOGGED_PER_FILE
    if hidden > 0:
        log.warning(
            "%s: %d more rejected lines (all are in the table ingestion_rejects)",
            item.source.uri,
            hidden,
        )


def _log_file(
    item: _Item,
    status: str,
    totals: _Totals | None = None,
    counts: LoadCounts | None = None,
    *,
    load_ms: float | None = None,
) -> None:
    fields: dict[str, object] = {
        "event": "file",
        "status": status,
        "source": item.source.uri,
        "station_id": item.subject,
        "content_sha256": item.sha256,
    }
    if item.fmt is not None:
        fields["format"] = item.fmt
    if load_ms is not None:
        fields["load_ms"] = round(load_ms, 1)  # time in the database, in this file's transaction
    if totals is not None and counts is not None:
        fields.update(
            records_read=totals.records_read,
            records_inserted=counts.inserted,
            records_updated=counts.updated,
            records_unchanged=counts.unchanged,
            records_rejected=totals.rejected,
        )
        message = (
            f"{item.source.uri}: {status} {totals.records_read} records "
            f"({counts.inserted} inserted, {counts.updated} updated, "
            f"{counts.unchanged} unchanged, {totals.rejected} rejected)"
        )
        if item.fmt in CHUNKED:
            fields.update(
                values_qc_removed=sum(totals.qc_removed.values()),
                qc_removed_by_flag=dict(sorted(totals.qc_removed.items())),
                values_other_elements=totals.other_values,
                lines_not_selected=totals.lines_not_selected,
                lines_unchanged=totals.lines_unchanged,
            )
            message += (
                f"; values not loaded: {_flags_text(totals.qc_removed)}, "
                f"{totals.other_values} of other elements"
            )
            if totals.lines_not_selected:
                message += f"; {totals.lines_not_selected} lines of stations not selected"
            if totals.lines_unchanged:
                message += (
                    f"; {totals.lines_unchanged} lines of stations unchanged since its last "
                    "load, not parsed again"
                )
    elif item.unread:
        fields["object_unchanged"] = True
        message = f"{item.source.uri}: {status} (object unchanged since it was read: same ETag)"
    else:
        message = f"{item.source.uri}: {status} (content already ingested)"
    log.info(message, extra=fields)


def _flags_text(qc_removed: Counter[str]) -> str:
    """'3 QC-flagged (D 2, G 1)', or '0 QC-flagged'."""
    total = sum(qc_removed.values())
    if not total:
        return "0 QC-flagged"
    return f"{total} QC-flagged ({', '.join(f'{f} {n}' for f, n in sorted(qc_removed.items()))})"
