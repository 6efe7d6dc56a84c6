"""The commands as operations: migrate, ingest, aggregate, and run (the scheduled job).

Each one brings the schema up to date first, records itself in ``job_runs`` and ends with one
summary log line. The CLI and the container entry points are thin wrappers around these.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor

from sqlalchemy import Engine

from wxhub.aggregation.main import run_aggregation
from wxhub.db import migrate
from wxhub.ingestion import ledger
from wxhub.ingestion.main import ingest
from wxhub.ingestion.sources import SourceFile
from wxhub.ingestion.workers import MIN_FILES_FOR_WORKERS, default_workers, parser_pool
from wxhub.observability import Metric, with_metrics

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1


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


def run_job(
    engine: Engine,
    command: str,
    *,
    sources: Sequence[SourceFile] = (),
    do_ingest: bool = True,
    do_aggregate: bool = True,
    force: bool = False,
    full: bool = False,
    workers: int | None = None,
) -> int:
    """Migrate, then ingest and/or aggregate; returns the process exit code."""
    if workers is None:
        workers = default_workers()
    if not do_ingest or len(sources) < MIN_FILES_FOR_WORKERS:
        workers = 0
    # The parser workers start first, before this process holds any connection.
    with parser_pool(workers) as pool:
        return _run(engine, command, sources, pool, do_ingest, do_aggregate, force, full)


def _run(  # noqa: PLR0917  (private: run_job's arguments, passed on)
    engine: Engine,
    command: str,
    sources: Sequence[SourceFile],
    pool: ProcessPoolExecutor | None,
    do_ingest: bool,
    do_aggregate: bool,
    force: bool,
    full: bool,
) -> int:
    migrate_schema(engine)
    run_id, started_at = ledger.start_run(engine, command)
    started = time.perf_counter()
    stats = ledger.RunStats()
    status = "failed"
    try:
        if do_ingest:
            stats = ingest(engine, sources, run_id=run_id, force=force, pool=pool)
        if do_aggregate:
            stats.station_years_aggregated = run_aggregation(engine, full=full)
        status = "succeeded" if stats.files_failed == 0 else "failed"
    finally:
        finished_at = ledger.finish_run(engine, run_id, status, stats)
        _log_summary(command, status, stats, started_at, finished_at, started, do_ingest)
    return EXIT_OK if status == "succeeded" else EXIT_FAILED


def _summary_metrics(stats: ledger.RunStats, duration_s: float, did_ingest: bool) -> list[Metric]:
    """What the dashboards and alarms watch; row and file counts only for a run that ingested."""
    metrics = [Metric("RunDurationSeconds", duration_s, "Seconds")]
    if did_ingest:
        metrics += [
            Metric("RowsIngested", stats.records_ingested, "Count"),
            Metric("RowsRejected", stats.records_rejected, "Count"),
            Metric("FilesFailed", stats.files_failed, "Count"),
        ]
    return metrics


def _log_summary(  # noqa: PLR0917  (private, called once)
    command: str,
    status: str,
    stats: ledger.RunStats,
    started_at: dt.datetime,
    finished_at: dt.datetime,
    started: float,
    did_ingest: bool,
) -> None:
    duration_s = round(time.perf_counter() - started, 3)
    start, end = started_at.isoformat() + "Z", finished_at.isoformat() + "Z"
    parts = [f"{command} {status}: started {start}, finished {end}, took {duration_s:.3f} s"]
    if did_ingest:
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
    parts.append(f"station-years aggregated: {stats.station_years_aggregated}")
    fields = {
        "event": "summary",
        "command": command,
        "status": status,
        "started_at": start,
        "finished_at": end,
        "duration_s": duration_s,
        **stats.counts(),
        "records_ingested": stats.records_ingested,
        **with_metrics("job", *_summary_metrics(stats, duration_s, did_ingest)),
    }
    level = logging.INFO if status == "succeeded" else logging.ERROR
    log.log(level, "; ".join(parts), extra=fields)
    for failure in stats.failures:
        log.error("failed file: %s", failure, extra={"event": "failure", "error": failure})
