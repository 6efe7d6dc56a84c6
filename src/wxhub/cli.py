"""The ``wxhub`` command: migrate, ingest, aggregate, run (the scheduled job) and stations.

Exit status: 0 when everything loaded (rejected lines are reported, not failures), 1 when a
file or the database failed, 2 for a usage or configuration error.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import Callable
from typing import Any

import click
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from wxhub import __version__
from wxhub.config import ConfigError, Settings, load_settings
from wxhub.db.engine import is_connection_failure, make_engine
from wxhub.db.lock import job_lock
from wxhub.db.migrate import SchemaNotMigrated
from wxhub.db.retry import DatabaseUnavailable, with_retries
from wxhub.db.tls import DatabaseTlsError
from wxhub.db.users import ensure_users
from wxhub.ingestion.formats import FORMATS, Format
from wxhub.ingestion.selection import SelectionSpec
from wxhub.ingestion.sources import SourceError, resolve, resolve_file
from wxhub.ingestion.stations import LEDGER_SUBJECT
from wxhub.job import (
    EXIT_FAILED,
    Guard,
    SchemaNotCurrent,
    migrate_schema,
    run_job,
    run_stations,
)
from wxhub.observability import Metric, configure_logging, with_metrics

log = logging.getLogger("wxhub")
EXIT_USAGE = 2

database_url_option = click.option(
    "--database-url",
    metavar="URL",
    help="SQLAlchemy URL; overrides DATABASE_URL and the DB_* variables.",
)
force_option = click.option(
    "--force", is_flag=True, help="Re-read every file, even those the ledger has already loaded."
)
wait_option = click.option(
    "--wait",
    is_flag=True,
    help="If another run holds the job lock, wait for it (default: leave the work to it and "
    "exit 0).",
)
full_option = click.option(
    "--full", is_flag=True, help="Recompute every station-year, not only those that changed."
)
workers_option = click.option(
    "--workers",
    type=click.IntRange(min=0),
    default=None,
    help="Parser processes beside the loader (default: WXHUB_PARSE_WORKERS, else on a "
    "multi-core machine 1 for 8 files or more or any by-year or big file, 2 when most are "
    "GHCN CSV station files; 0 parses inline).",
)


class ShardType(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """``K/N``: this task is shard K of N (1 <= K <= N)."""

    name = "K/N"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        shard, sep, shards = str(value).strip().partition("/")
        try:
            k, n = int(shard), int(shards)
        except ValueError:
            k = n = 0
        if sep != "/" or not 1 <= k <= n:
            self.fail(
                f"{value!r} is not K/N with 1 <= K <= N (e.g. 1/4 for the first of four tasks)",
                param,
                ctx,
            )
        return k, n


shard_option = click.option(
    "--shard",
    type=ShardType(),
    default=None,
    help="Take only shard K of N of the files (K from 1 to N), chosen by a stable hash of "
    "the station id: N tasks with 1/N ... N/N load every file exactly once.",
)
sources_argument = click.argument("sources", nargs=-1, required=True, envvar="WXHUB_SOURCES")


class ListType(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """A comma-separated list whose items each match ``pattern`` (``IL,IN``)."""

    def __init__(self, name: str, pattern: str, example: str) -> None:
        self.name = name
        self._pattern = re.compile(pattern)
        self._example = example

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, ...]:
        if isinstance(value, tuple):
            return value
        items = tuple(item.strip() for item in str(value).split(",") if item.strip())
        bad = [item for item in items if not self._pattern.fullmatch(item)]
        if not items or bad:
            shown = ", ".join(repr(b) for b in bad) or repr(value)
            self.fail(f"{shown} is not a list of {self.name} (e.g. {self._example})", param, ctx)
        return items


class BoxType(click.ParamType):  # type: ignore[type-arg]  # generic from click 8.2
    """``MIN_LON,MIN_LAT,MAX_LON,MAX_LAT`` in decimal degrees."""

    name = "MIN_LON,MIN_LAT,MAX_LON,MAX_LAT"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[float, float, float, float]:
        if isinstance(value, tuple):
            return value
        try:
            min_lon, min_lat, max_lon, max_lat = (float(v) for v in str(value).split(","))
        except ValueError:
            self.fail(f"{value!r} is not four numbers MIN_LON,MIN_LAT,MAX_LON,MAX_LAT", param, ctx)
        if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
            self.fail(
                f"{value!r}: longitudes must be within -180..180 and latitudes within -90..90, "
                "each minimum at most its maximum (e.g. -91.6,36.9,-87.0,42.6 for Illinois)",
                param,
                ctx,
            )
        return min_lon, min_lat, max_lon, max_lat


format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    envvar="WXHUB_FORMAT",
    help="The files' format (default: recognised from each file's content).",
)
stations_option = click.option(
    "--stations",
    type=ListType("station ids or globs", r"[A-Za-z0-9_*?\[\]!-]{1,20}", "USC0011*,USW00094846"),
    default=None,
    envvar="WXHUB_STATIONS",
    help="Only these stations: ids or globs, comma-separated.",
)
country_option = click.option(
    "--country",
    type=ListType("two-letter country codes", r"[A-Z]{2}", "US,CA"),
    default=None,
    envvar="WXHUB_COUNTRY",
    help="Only stations of these countries (the id's first two letters, GHCN's FIPS codes).",
)
state_option = click.option(
    "--state",
    type=ListType("two-letter state codes", r"[A-Z]{2}", "IL,IN"),
    default=None,
    envvar="WXHUB_STATE",
    help="Only stations of these U.S. states or Canadian provinces (needs station metadata).",
)
bbox_option = click.option(
    "--bbox",
    type=BoxType(),
    default=None,
    envvar="WXHUB_BBOX",
    help="Only stations within this box of decimal degrees (needs station metadata).",
)


def selection_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--format and the station selection, as run and ingest take them."""
    for option in (bbox_option, state_option, country_option, stations_option, format_option):
        func = option(func)
    return func


def _command(func: Callable[..., int]) -> Callable[..., None]:
    """Settings, logging and one-line errors around a command body returning an exit code."""

    @functools.wraps(func)
    def wrapper(database_url: str | None, **kwargs: Any) -> None:
        try:
            settings = load_settings(database_url_override=database_url)
        except ConfigError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_USAGE)
        configure_logging(settings)
        sys.exit(_guarded(func, settings, **kwargs))

    return wrapper


def _guarded(func: Callable[..., int], settings: Settings, **kwargs: Any) -> int:
    try:
        return func(settings, **kwargs)
    # A TLS failure is a setting to fix (the CA bundle, WXHUB_DB_TLS), not an outage to wait
    # out; a schema behind the code is the migration task's to bring up, not the job's (nor a
    # shard's, which only checks it).
    except (SourceError, DatabaseTlsError, SchemaNotMigrated, SchemaNotCurrent) as exc:
        log.error("error: %s", exc, extra={"event": "error"})
        return EXIT_USAGE
    except DatabaseUnavailable as exc:
        log.error(
            "error: %s (%s)",
            exc,
            settings.database_url_safe,
            extra={
                "event": "error",
                "database": settings.database_url_safe,
                **with_metrics("job", Metric("DatabaseConnectionFailures", 1, "Count")),
            },
        )
        return EXIT_FAILED
    except DBAPIError as exc:
        fields: dict[str, Any] = {"event": "error", "database": settings.database_url_safe}
        if is_connection_failure(exc):
            fields.update(with_metrics("job", Metric("DatabaseConnectionFailures", 1, "Count")))
        log.error(
            "error: the database %s failed: %s",
            settings.database_url_safe,
            exc.orig,
            extra=fields,
        )
        return EXIT_FAILED
    except SQLAlchemyError as exc:
        log.error("error: database error: %s", exc, extra={"event": "error"})
        return EXIT_FAILED
    except Exception as exc:  # a bug: one line for the operator, the trace for the developer
        log.exception(
            "error: unexpected %s: %s (the trace follows)",
            type(exc).__name__,
            exc,
            extra={"event": "error"},
        )
        return EXIT_FAILED


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wxhub")
def main() -> None:
    """wxhub: NOAA daily weather records into a database, with yearly statistics."""


@main.command()
@database_url_option
@_command
def migrate(settings: Settings) -> int:
    """Bring the database schema up to date (after any run in progress)."""
    engine = make_engine(settings.database_url, writer=True, tls=settings.db_tls)
    with job_lock(engine, wait=True):
        with_retries(
            engine,
            lambda: migrate_schema(engine),
            what="migrating the schema",
            budget_s=settings.db_retry_s,
        )
        with_retries(
            engine,
            lambda: ensure_users(engine, settings.db_users),
            what="updating the database users",
            budget_s=settings.db_retry_s,
        )
    log.info("schema is up to date on %s", settings.database_url_safe)
    return 0


@main.command()
@sources_argument
@force_option
@shard_option
@selection_options
@workers_option
@wait_option
@database_url_option
@_command
def ingest(  # noqa: PLR0917  (click passes the options as arguments)
    settings: Settings,
    sources: tuple[str, ...],
    force: bool,
    shard: tuple[int, int] | None,
    fmt: Format | None,
    stations: tuple[str, ...] | None,
    country: tuple[str, ...] | None,
    state: tuple[str, ...] | None,
    bbox: tuple[float, float, float, float] | None,
    workers: int | None,
    wait: bool,
) -> int:
    """Load station files from SOURCE (folder, file, glob or s3://bucket/prefix/) without
    aggregating. With --shard it does not migrate either: shards run side by side, after one
    `wxhub migrate`, and a shard exits 2 if the schema is not up to date."""
    return _run_sources(
        settings,
        "ingest",
        sources,
        force=force,
        shard=shard,
        migrate_first=shard is None,
        workers=workers,
        wait=wait,
        fmt=fmt,
        selection=SelectionSpec(stations or (), country or (), state or (), bbox),
    )


@main.command()
@full_option
@wait_option
@database_url_option
@_command
def aggregate(settings: Settings, full: bool, wait: bool) -> int:
    """Recompute the yearly statistics of the station-years that changed."""
    return run_job(
        make_engine(settings.database_url, writer=True, tls=settings.db_tls),
        "aggregate",
        do_ingest=False,
        full=full,
        guard=Guard(wait=wait, retry_s=settings.db_retry_s),
    )


@main.command()
@sources_argument
@force_option
@full_option
@shard_option
@selection_options
@workers_option
@wait_option
@database_url_option
@_command
def run(  # noqa: PLR0917  (click passes the options as arguments)
    settings: Settings,
    sources: tuple[str, ...],
    force: bool,
    full: bool,
    shard: tuple[int, int] | None,
    fmt: Format | None,
    stations: tuple[str, ...] | None,
    country: tuple[str, ...] | None,
    state: tuple[str, ...] | None,
    bbox: tuple[float, float, float, float] | None,
    workers: int | None,
    wait: bool,
) -> int:
    """The scheduled job: migrate, ingest SOURCE... (folder, file, glob or
    s3://bucket/prefix/), then aggregate what is queued. One run at a time per database:
    a run that finds another in progress leaves the work to it (or waits, with --wait).

    Files may be wx station files, GHCN-Daily CSV (by station or by year) or .dly, plain or
    .gz; NOAA's ghcnd-stations.txt among them loads first. --stations, --country, --state
    and --bbox keep only some stations (all given must hold)."""
    return _run_sources(
        settings,
        "run",
        sources,
        force=force,
        full=full,
        shard=shard,
        workers=workers,
        wait=wait,
        fmt=fmt,
        selection=SelectionSpec(stations or (), country or (), state or (), bbox),
    )


@main.command()
@click.argument("source")
@force_option
@wait_option
@database_url_option
@_command
def stations(settings: Settings, source: str, force: bool, wait: bool) -> int:
    """Load NOAA's station list (ghcnd-stations.txt) from SOURCE, a file (plain or .gz) or
    s3://bucket/key, into the stations table. Stations the file leaves out are kept; an
    unchanged file is skipped."""
    return run_stations(
        make_engine(settings.database_url, writer=True, tls=settings.db_tls),
        resolve_file(source, LEDGER_SUBJECT),
        force=force,
        guard=Guard(wait=wait, retry_s=settings.db_retry_s),
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="gunicorn worker processes (default: two per core, at least two).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=4,
    show_default=True,
    help="Threads per worker (each serves one connection at a time, with keep-alive).",
)
@database_url_option
@_command
def serve(settings: Settings, host: str, port: int, workers: int | None, threads: int) -> int:
    """Serve the REST API under gunicorn (the job's database settings; it reads from
    DATABASE_READ_URL or DB_READ_HOST instead when one is set)."""
    from wxhub.api.server import default_workers  # noqa: PLC0415  (the job never needs Flask)
    from wxhub.api.server import serve as serve_api  # noqa: PLC0415

    serve_api(settings, host=host, port=port, workers=workers or default_workers(), threads=threads)
    return 0


def _run_sources(
    settings: Settings,
    command: str,
    sources: tuple[str, ...],
    *,
    force: bool,
    workers: int | None,
    full: bool = False,
    shard: tuple[int, int] | None = None,
    wait: bool = False,
    fmt: Format | None = None,
    selection: SelectionSpec | None = None,
    migrate_first: bool = True,
) -> int:
    found = resolve(sources)
    return run_job(
        make_engine(settings.database_url, writer=True, tls=settings.db_tls),
        command,
        sources=found.files,
        station_metadata=found.station_metadata,
        fmt=fmt,
        selection=selection,
        do_aggregate=command == "run",
        force=force,
        full=full,
        workers=settings.parse_workers if workers is None else workers,
        # Shards run side by side by design: each takes its own lock, not the whole job's.
        guard=Guard(
            lock="job" if shard is None else f"job-shard-{shard[0]}-of-{shard[1]}",
            wait=wait,
            retry_s=settings.db_retry_s,
        ),
        shard=shard,
        migrate_first=migrate_first,
    )


if __name__ == "__main__":
    main()
