"""The commands as operations: migrate, ingest, aggregate, run (the scheduled job), stations.

Each one brings the schema up to date first (but an ingest of one shard, which only checks it:
see :class:`SchemaNotCurrent`), records itself in ``job_runs`` and ends with one summary log
line. The CLI and the container entry points are thin wrappers around these.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import Engine

from wxhub.aggregation.main import run_aggregation
from wxhub.db import migrate
from wxhub.db.lock import HeldLock, LockBusy, LockLost, job_lock
from wxhub.db.retry import DEFAULT_RETRY_S, DatabaseUnavailable, with_retries
from wxhub.ingestion import ledger
from wxhub.ingestion.formats import Format
from wxhub.ingestion.main import ingest
from wxhub.ingestion.regions import stations_matching
from wxhub.ingestion.selection import SelectionSpec
from wxhub.ingestion.sources import SourceFile
from wxhub.ingestion.stations_loader import (
    StationListFailed,
    StationLoadStats,
    load_station_metadata,
)
from wxhub.ingestion.workers import default_workers, parser_pool, worker_pays_off
from wxhub.observability import Metric, with_metrics

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1

T = TypeVar("T")


class SchemaNotCurrent(RuntimeError):  # noqa: N818  (reads as the condition it names)
    """A step that does not migrate found the schema at another revision than this code's."""


def require_current_schema(engine: Engine) -> None:
    """Raise :class:`SchemaNotCurrent` unless the schema is at this code's newest revision.

    For the steps that run side by side (the shards of one run): migrating is one step of its
    own before them (``wxhub migrate``), never a race between them.
    """
    current = migrate.current_revision(engine)
    if current != migrate.HEAD_REVISION:
        raise SchemaNotCurrent(
            f"the database schema is at {current or 'no revision (an empty database)'} and "
            f"this wxhub needs {migrate.HEAD_REVISION}: run `wxhub migrate` first "
            "(a shard never migrates, since shards run side by side)"
        )


def migrate_schema(engine: Engine) -> None:
    """Upgrade the schema to the newest migration, saying what changed."""
    before, after = migrate.upgrade(engine)
    if before != after:
        log.info(
            "schema upgraded from %s to %s",
            before or "an empty database",
            after,
            extra={"event": "migrate", "from_revision": before, "to_revision": after},
        )


@dataclass(frozen=True)
class Guard:
    """How a run shares the database with others and rides out a database that goes away."""

    # The lock that keeps two runs from writing at once (None: take no lock).
    lock: str | None = "job"
    # Wait for a run that holds the lock, rather than leaving the work to it.
    wait: bool = False
    # How long to keep retrying a step whose connection failed.
    retry_s: float = DEFAULT_RETRY_S


@dataclass(frozen=True)
class _Work:
    """What one command was asked to do (run_job's arguments, passed on)."""

    command: str
    sources: Sequence[SourceFile]
    station_metadata: Sequence[SourceFile]
    do_ingest: bool
    do_aggregate: bool
    force: bool
    full: bool
    shard: tuple[int, int] | None
    fmt: Format | None
    selection: SelectionSpec
    migrate_first: bool


def run_job(
    engine: Engine,
    command: str,
    *,
    sources: Sequence[SourceFile] = (),
    station_metadata: Sequence[SourceFile] = (),
    do_ingest: bool = True,
    do_aggregate: bool = True,
    force: bool = False,
    full: bool = False,
    workers: int | None = None,
    guard: Guard | None = None,
    shard: tuple[int, int] | None = None,
    fmt: Format | None = None,
    selection: SelectionSpec | None = None,
    migrate_first: bool = True,
) -> int:
    """Migrate, then ingest and/or aggregate, holding the job lock; returns the exit code.

    Without ``migrate_first`` the schema is only checked: :class:`SchemaNotCurrent` unless it is at
    this code's newest revision.

    When another run holds the lock the work is already being done: this run says so and
    returns 0 (or waits, with ``guard.wait``). A ``shard`` (K, N) run takes only its own
    stations (their files, and their lines of a by-year file) and aggregates only their
    years, so N shards can run side by side. ``station_metadata`` files (NOAA's
    ghcnd-stations.txt) load first, so a ``selection`` by state or box can use them.
    """
    guard = guard or Guard()
    work = _Work(
        command,
        sources,
        station_metadata,
        do_ingest,
        do_aggregate,
        force,
        full,
        shard,
        fmt,
        selection or SelectionSpec(),
        migrate_first,
    )
    if workers is None:
        workers = default_workers(sources)
    if not do_ingest or not worker_pays_off(sources):
        workers = 0
    # The parser workers start first, before this process holds any connection.
    with parser_pool(workers) as pool:
        try:
            with _locked(engine, guard) as held:
                return _run(engine, work, pool, guard, held)
        except LockBusy as busy:
            log.warning("%s: %s", command, busy, extra={"event": "lock_busy", "command": command})
            return EXIT_OK
        except LockLost as lost:  # before the run was recorded: nothing of it was written
            log.warning("%s: %s", command, lost, extra={"event": "lock_lost", "command": command})
            return EXIT_OK


@contextlib.contextmanager
def _locked(engine: Engine, guard: Guard) -> Iterator[HeldLock]:
    if guard.lock is None:
        yield HeldLock()
        return
    name = guard.lock
    with contextlib.ExitStack() as stack:
        held = with_retries(
            engine,
            lambda: stack.enter_context(job_lock(engine, name=name, wait=guard.wait)),
            what="taking the job lock",
            budget_s=guard.retry_s,
        )
        yield held


def _run(
    engine: Engine,
    work: _Work,
    pool: ProcessPoolExecutor | None,
    guard: Guard,
    held: HeldLock,
) -> int:
    def retried(step: Callable[[], T], what: str) -> T:
        return with_retries(engine, step, what=what, budget_s=guard.retry_s)

    command = work.command
    if work.migrate_first:
        retried(lambda: migrate_schema(engine), "migrating the schema")
    else:
        retried(lambda: require_current_schema(engine), "checking the schema")
    run_id, started_at = retried(lambda: ledger.start_run(engine, command), "recording the run")
    started = time.perf_counter()
    stats = ledger.RunStats()
    status = "failed"
    try:
        if work.do_ingest:
            stats = _ingest(engine, work, pool, run_id, guard)
        if work.do_aggregate:
            stats.station_years_aggregated = retried(
                lambda: run_aggregation(engine, full=work.full, shard=work.shard), "aggregating"
            )
        status = "succeeded" if stats.files_failed == 0 else "failed"
    except LockLost as lost:
        # Another run holds the lock now and does the work; nothing uncommitted was kept.
        held.stand_down()
        status = "superseded"
        log.warning("%s: %s", command, lost, extra={"event": "lock_lost", "command": command})
    finally:
        finished_at = _finish(engine, run_id, status, stats, guard)
        _log_summary(command, status, stats, started_at, finished_at, started, work)
    return EXIT_FAILED if status == "failed" else EXIT_OK


def _ingest(
    engine: Engine, work: _Work, pool: ProcessPoolExecutor | None, run_id: int, guard: Guard
) -> ledger.RunStats:
    """Station metadata first, then the data files the selection keeps."""
    failures = [
        failure
        for metadata in work.station_metadata
        if (failure := _load_metadata(engine, metadata, run_id, work.force, guard)) is not None
    ]
    with engine.connect() as conn:
        metadata_ids = stations_matching(conn, work.selection)
    selection = work.selection.to_filter(metadata_ids=metadata_ids, shard=work.shard)
    files = [f for f in work.sources if f.station_id is None or selection.accepts(f.station_id)]
    if work.shard is not None:
        k, n = work.shard
        log.info(
            "shard %d/%d: %d of the %d files",
            k,
            n,
            len(files),
            len(work.sources),
            extra={"event": "shard", "shard": f"{k}/{n}", "files": len(files)},
        )
    if not work.selection.to_filter(metadata_ids=metadata_ids, shard=None).keeps_everything:
        log.info(
            "selection: %s: %d of the %d files",
            selection.describe(),
            len(files),
            len(work.sources),
            extra={"event": "selection", "selection": selection.describe(), "files": len(files)},
        )
    stats = ingest(
        engine,
        files,
        run_id=run_id,
        force=work.force,
        pool=pool,
        retry_s=guard.retry_s,
        fmt=work.fmt,
        selection=selection,
    )
    stats.files_failed += len(failures)
    stats.failures += failures
    return stats


def _load_metadata(
    engine: Engine, source: SourceFile, run_id: int, force: bool, guard: Guard
) -> str | None:
    """Load one ghcnd-stations.txt found among the sources; the failure in words, or None."""
    try:
        load_station_metadata(engine, source, run_id=run_id, force=force, retry_s=guard.retry_s)
    except StationListFailed as failed:
        log.error(
            "%s: failed: %s",
            source.uri,
            failed,
            extra={"event": "file", "status": "failed", "source": source.uri, "error": str(failed)},
        )
        return str(failed)
    return None


def _finish(
    engine: Engine, run_id: int, status: str, stats: ledger.RunStats, guard: Guard
) -> dt.datetime:
    """Record the outcome; if the database is gone for good, the summary line still says it."""
    try:
        return with_retries(
            engine,
            lambda: ledger.finish_run(engine, run_id, status, stats),
            what="recording the outcome",
            budget_s=guard.retry_s,
        )
    except DatabaseUnavailable as exc:
        log.error("%s", exc, extra={"event": "error"})
        return ledger.utcnow()


# One per run that succeeded to its end, the aggregation: the alarm on a silent night watches
# it (infra's Monitoring.watch_runs), since a run that never starts writes no line at all.
RUNS_SUCCEEDED = "RunsSucceeded"


def _summary_metrics(
    stats: ledger.RunStats, duration_s: float, status: str, work: _Work
) -> list[Metric]:
    """What the dashboards and alarms watch; row and file counts only for a run that ingested,
    and ``RunsSucceeded`` only for a run that succeeded and aggregated: ``run`` (a shard of it
    too) or ``aggregate``, the last step of every way the data reaches the API. An ``ingest``
    alone does not count, since its data is not served until an aggregation follows."""
    metrics = [Metric("RunDurationSeconds", duration_s, "Seconds")]
    if work.do_ingest:
        metrics += [
            Metric("RowsIngested", stats.records_ingested, "Count"),
            Metric("RowsRejected", stats.records_rejected, "Count"),
            Metric("FilesFailed", stats.files_failed, "Count"),
        ]
    if status == "succeeded" and work.do_aggregate:
        metrics.append(Metric(RUNS_SUCCEEDED, 1, "Count"))
    return metrics


def _log_summary(  # noqa: PLR0917  (private, called once)
    command: str,
    status: str,
    stats: ledger.RunStats,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    started: float,
    work: _Work,
) -> None:
    duration_s = round(time.perf_counter() - started, 3)
    start, end = started_at.isoformat() + "Z", finished_at.isoformat() + "Z"
    parts = [f"{command} {status}: started {start}, finished {end}, took {duration_s:.3f} s"]
    if work.do_ingest:
        parts.append(
            f"files: {stats.files_seen} seen, {stats.files_skipped} skipped, "
            f"{stats.files_loaded} loaded, {stats.files_failed} failed"
        )
        parts.append(
            f"records: {stats.records_read} read, {stats.records_inserted} inserted, "
            f"{stats.records_updated} updated, {stats.records_unchanged} unchanged, "
            f"{stats.records_rejected} rejected"
        )
        parts.append(f"records ingested: {stats.records_ingested}")
        if stats.qc_removed or stats.values_other_elements:
            flagged = ", ".join(f"{f} {n}" for f, n in sorted(stats.qc_removed.items()))
            parts.append(
                f"values not loaded: {sum(stats.qc_removed.values())} QC-flagged"
                + (f" ({flagged})" if flagged else "")
                + f", {stats.values_other_elements} of other elements"
            )
    parts.append(f"station-years aggregated: {stats.station_years_aggregated}")
    fields = {
        "event": "summary",
        "command": command,
        "status": status,
        "started_at": start,
        "finished_at": end,
        "duration_s": duration_s,
        **stats.log_fields(),
        "records_ingested": stats.records_ingested,
        **with_metrics("job", *_summary_metrics(stats, duration_s, status, work)),
    }
    level = {"succeeded": logging.INFO, "superseded": logging.WARNING}.get(status, logging.ERROR)
    log.log(level, "; ".join(parts), extra=fields)
    for failure in stats.failures:
        log.error("failed file: %s", failure, extra={"event": "failure", "error": failure})


def run_stations(
    engine: Engine, source: SourceFile, *, force: bool = False, guard: Guard | None = None
) -> int:
    """Migrate, then load NOAA's station list from ``source``, holding the job lock; returns
    the exit code (1 when the file cannot be read or is not a station list).

    Recorded in ``job_runs`` as command ``stations``, with the list as its one file and its
    stations as the records; a run that finds another in progress leaves it be, as ``run``.
    """
    guard = guard or Guard()
    try:
        with _locked(engine, guard) as held:
            return _run_stations(engine, source, force, guard, held)
    except LockBusy as busy:
        log.warning("stations: %s", busy, extra={"event": "lock_busy", "command": "stations"})
        return EXIT_OK
    except LockLost as lost:  # before the run was recorded: nothing of it was written
        log.warning("stations: %s", lost, extra={"event": "lock_lost", "command": "stations"})
        return EXIT_OK


def _run_stations(
    engine: Engine, source: SourceFile, force: bool, guard: Guard, held: HeldLock
) -> int:
    def retried(step: Callable[[], T], what: str) -> T:
        return with_retries(engine, step, what=what, budget_s=guard.retry_s)

    retried(lambda: migrate_schema(engine), "migrating the schema")
    run_id, started_at = retried(lambda: ledger.start_run(engine, "stations"), "recording the run")
    started = time.perf_counter()
    stats = ledger.RunStats(files_seen=1)
    status = "failed"
    try:
        loaded = load_station_metadata(
            engine, source, run_id=run_id, force=force, retry_s=guard.retry_s
        )
        _count_station_list(stats, loaded)
        status = "succeeded"
    except StationListFailed as failed:
        stats.files_failed = 1
        stats.failures.append(str(failed))
        log.error(
            "%s: failed: %s",
            source.uri,
            failed,
            extra={"event": "file", "status": "failed", "source": source.uri, "error": str(failed)},
        )
    except LockLost as lost:
        held.stand_down()
        status = "superseded"
        log.warning("stations: %s", lost, extra={"event": "lock_lost", "command": "stations"})
    finally:
        finished_at = _finish(engine, run_id, status, stats, guard)
        _log_stations_summary(source.uri, status, stats, started_at, finished_at, started)
    return EXIT_FAILED if status == "failed" else EXIT_OK


def _count_station_list(stats: ledger.RunStats, loaded: StationLoadStats) -> None:
    """The station list's outcome in a run's counts: one file, its stations as records."""
    if loaded.skipped:
        stats.files_skipped = 1
        return
    stats.files_loaded = 1
    stats.records_read = loaded.records_read
    stats.records_inserted = loaded.inserted
    stats.records_updated = loaded.updated
    stats.records_unchanged = loaded.unchanged
    stats.records_rejected = loaded.rejected


def _log_stations_summary(  # noqa: PLR0917  (private, called once)
    source_uri: str,
    status: str,
    stats: ledger.RunStats,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    started: float,
) -> None:
    duration_s = round(time.perf_counter() - started, 3)
    start, end = started_at.isoformat() + "Z", finished_at.isoformat() + "Z"
    if stats.files_skipped:
        outcome = "skipped (already loaded)"
    elif stats.files_failed:
        outcome = "failed"
    else:
        outcome = (
            f"{stats.records_read} stations read, {stats.records_inserted} inserted, "
            f"{stats.records_updated} updated, {stats.records_unchanged} unchanged, "
            f"{stats.records_rejected} rejected"
        )
    message = (
        f"stations {status}: started {start}, finished {end}, took {duration_s:.3f} s; "
        f"{source_uri}: {outcome}"
    )
    fields = {
        "event": "summary",
        "command": "stations",
        "status": status,
        "source": source_uri,
        "started_at": start,
        "finished_at": end,
        "duration_s": duration_s,
        **stats.counts(),
        "records_ingested": stats.records_ingested,
        # Not RowsIngested: the dashboards count observations with it.
        **with_metrics(
            "job",
            Metric("RunDurationSeconds", duration_s, "Seconds"),
            Metric("FilesFailed", stats.files_failed, "Count"),
        ),
    }
    level = {"succeeded": logging.INFO, "superseded": logging.WARNING}.get(status, logging.ERROR)
    log.log(level, message, extra=fields)
    for failure in stats.failures:
        log.error("failed file: %s", failure, extra={"event": "failure", "error": failure})
