"""Bulk loading of one parsed file into ``weather_observations``, inside the caller's transaction.

The database's primary key, not a check-then-insert, is what keeps a station-day unique:

* a file of one station the table has never seen is copied straight in with the backend's
  own bulk path;
* otherwise the file goes to a temporary staging table first; one set-based pass, the only
  one that joins it to the table, copies the rows that are new or different into a second
  temporary table, and the counts (new, changed, unchanged), the queue of station-years to
  aggregate and a dialect upsert (``ON CONFLICT`` / ``ON DUPLICATE KEY``) read that one alone.
  A night's by-year file holds the year so far and changes one day of it: its other days are
  looked up in the table's key once, not once per step.

A big file (a GHCN-Daily by-year file) arrives in chunks: each chunk is appended, by the
bulk path, to a temporary heap table without a key (no index to maintain, no conflict to
resolve per chunk); once the whole file is there, one statement (a ``GROUP BY station_id,
obs_date`` on SQLite, an ordered ``INSERT ... ON DUPLICATE KEY UPDATE`` on MySQL) folds it
into the keyed staging table, the largest value of each column winning (a day whose elements
fall in two chunks becomes one row: a missing value is NULL),
and the comparison and upsert run once. Memory stays that of one chunk; reloading a file that
barely changed writes only its changed rows.

The bulk path is ``LOAD DATA LOCAL INFILE`` on MySQL/MariaDB (batched INSERTs when the server
refuses it) and ``json_each`` on SQLite, so no Python object is made per row.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import tempfile
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Date,
    Engine,
    MetaData,
    Select,
    SmallInteger,
    Table,
    and_,
    bindparam,
    case,
    extract,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.exc import DBAPIError

from wxhub.db.engine import is_connection_failure
from wxhub.db.schema import StationId, aggregation_pending, weather_observations
from wxhub.db.sql import create_temporary_table, drop_temporary_table, same_values, upsert
from wxhub.domain import MISSING
from wxhub.ingestion.rows import ParsedFile, PayloadFormat, payload_of

log = logging.getLogger(__name__)

obs = weather_observations
VALUE_COLUMNS = ("max_temp_tenths_c", "min_temp_tenths_c", "precipitation_tenths_mm")
_COLUMNS = ["station_id", "obs_date", *VALUE_COLUMNS]

_staging = Table(
    "wxhub_staging_observations",
    MetaData(),
    Column("station_id", StationId, primary_key=True),
    Column("obs_date", Date, primary_key=True),
    *(Column(name, SmallInteger) for name in VALUE_COLUMNS),
    prefixes=["TEMPORARY"],
)
# A chunked file's rows as they arrive, appended without a key; folded into _staging at the end.
_heap = Table(
    "wxhub_staging_heap",
    MetaData(),
    Column("station_id", StationId, nullable=False),
    Column("obs_date", Date, nullable=False),
    *(Column(name, SmallInteger) for name in VALUE_COLUMNS),
    prefixes=["TEMPORARY"],
)

# The staged rows that change the table, and whether each is new (1) or replaces a row (0).
_changes = Table(
    "wxhub_staging_changes",
    MetaData(),
    Column("station_id", StationId, primary_key=True),
    Column("obs_date", Date, primary_key=True),
    *(Column(name, SmallInteger) for name in VALUE_COLUMNS),
    Column("is_new", SmallInteger, nullable=False),
    prefixes=["TEMPORARY"],
)


@dataclass(frozen=True)
class LoadCounts:
    """What loading one file did to ``weather_observations``."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0


class Loader:
    """Loads parsed files over one connection; the caller owns the transaction."""

    # The form of the rows bulk_copy hands to the database (workers make it ahead of time).
    payload_format: PayloadFormat = "tsv"

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        with conn.begin():
            # A pooled connection may keep it from an earlier run; its rows are cleared per use.
            create_temporary_table(conn, _staging)
            create_temporary_table(conn, _changes)

    def load(self, parsed: ParsedFile) -> LoadCounts:
        """Write the file's rows; returns how many were inserted, updated and unchanged."""
        if parsed.row_count == 0:
            return LoadCounts()
        station_id = parsed.station_id
        if station_id is not None and not self._station_has_rows(station_id):
            self.bulk_copy(parsed, obs)
            self._queue_years(station_id, parsed.years)
            return LoadCounts(inserted=parsed.row_count)
        self.conn.execute(_staging.delete())
        self.bulk_copy(parsed, _staging)
        return self._apply_staged()

    def start_staging(self) -> None:
        """Make ready for a file that arrives chunk by chunk: an empty staging table and a
        new, empty heap table (made anew rather than emptied: dropping a table of millions of
        rows is instant, deleting them is not)."""
        self.conn.execute(_staging.delete())
        drop_temporary_table(self.conn, _heap)
        create_temporary_table(self.conn, _heap)

    def stage(self, parsed: ParsedFile) -> None:
        """Append one chunk's rows to the heap table, by the bulk path."""
        if parsed.row_count:
            self.bulk_copy(parsed, _heap)

    def apply_staging(self) -> LoadCounts:
        """Fold the staged chunks into one row per station-day, then write what the file
        changes; returns inserted, updated and unchanged."""
        self._fold_heap()
        return self._apply_staged()

    def _fold_heap(self) -> None:
        """One set-based pass from the heap to the keyed staging table. MAX ignores NULL, so
        the parts of a day given in different chunks merge; the parser rejects an element
        given twice within a chunk, and across chunks the larger value wins."""
        grouped = select(
            _heap.c.station_id,
            _heap.c.obs_date,
            *(func.max(_heap.c[n]) for n in VALUE_COLUMNS),
        ).group_by(_heap.c.station_id, _heap.c.obs_date)
        self.conn.execute(_staging.insert().from_select(_COLUMNS, grouped))
        drop_temporary_table(self.conn, _heap)

    def _apply_staged(self) -> LoadCounts:
        """Write what the staged file changes: the one join with the table collects the
        changes; the counts, the queue and the upsert then read only those."""
        self.conn.execute(_changes.delete())
        is_new = case((obs.c.station_id.is_(None), 1), else_=0)
        changed = (
            select(*(_staging.c[n] for n in _COLUMNS), is_new)
            .select_from(self._joined())
            .where(or_(obs.c.station_id.is_(None), ~self._same_values()))
        )
        self.conn.execute(_changes.insert().from_select([*_COLUMNS, "is_new"], changed))
        staged = self.conn.execute(select(func.count()).select_from(_staging)).scalar_one()
        changes, inserted = self.conn.execute(
            select(func.count(), func.coalesce(func.sum(_changes.c.is_new), 0))
        ).one()
        if changes:
            self._queue_changed_years()
            self._upsert_changed()
        return LoadCounts(
            inserted=int(inserted),
            updated=int(changes) - int(inserted),
            unchanged=int(staged) - int(changes),
        )

    def bulk_copy(self, parsed: ParsedFile, target: Table) -> None:
        """Insert every row of ``parsed`` into ``target`` (no conflict expected)."""
        raise NotImplementedError

    def payload(self, parsed: ParsedFile) -> bytes:
        """The rows in this loader's form: made by the worker, or here if it was not."""
        return payload_of(parsed, self.payload_format)

    # -- the set-based steps shared by every backend --------------------------------------

    def _station_has_rows(self, station_id: str) -> bool:
        query = select(literal(1)).where(obs.c.station_id == station_id).limit(1)
        return self.conn.execute(query).first() is not None

    def _queue_years(self, station_id: str, years: frozenset[int]) -> None:
        rows = [{"station_id": station_id, "year": year} for year in sorted(years)]
        self.conn.execute(upsert(self.conn, aggregation_pending, update_columns=()), rows)

    def _joined(self) -> Any:
        return _staging.outerjoin(
            obs,
            and_(obs.c.station_id == _staging.c.station_id, obs.c.obs_date == _staging.c.obs_date),
        )

    @staticmethod
    def _same_values() -> Any:
        return same_values(
            [_staging.c[n] for n in VALUE_COLUMNS], [obs.c[n] for n in VALUE_COLUMNS]
        )

    def _queue_changed_years(self) -> None:
        # WHERE true: SQLite needs a WHERE in an upsert's SELECT (else its ON is ambiguous).
        years = (
            select(_changes.c.station_id, extract("year", _changes.c.obs_date))
            .where(true())
            .distinct()
        )
        stmt = upsert(self.conn, aggregation_pending, update_columns=()).from_select(
            ["station_id", "year"], years
        )
        self.conn.execute(stmt)

    def _upsert_changed(self) -> None:
        changed = select(*(_changes.c[n] for n in _COLUMNS)).where(true())
        stmt = upsert(self.conn, obs, update_columns=VALUE_COLUMNS).from_select(_COLUMNS, changed)
        self.conn.execute(stmt)


class SqliteLoader(Loader):
    """SQLite: the whole file goes in as one JSON document, expanded by ``json_each``."""

    payload_format: PayloadFormat = "json"
    # '->>' (SQLite 3.38+) is faster than json_extract; both give SQL values, not JSON text.
    _ITEM = (
        "value->>{}" if sqlite3.sqlite_version_info >= (3, 38) else "json_extract(value, '$[{}]')"
    )

    def bulk_copy(self, parsed: ParsedFile, target: Table) -> None:
        stmt = target.insert().from_select(_COLUMNS, self._rows(parsed))
        self.conn.execute(stmt, self._parameters(parsed))

    def _rows(self, parsed: ParsedFile) -> Select[Any]:
        # Composed, not formatted: the file's data reaches the database only as bound values.
        item = self._ITEM.format
        first = 0 if parsed.station_id is not None else 1
        station = bindparam("station_id") if first == 0 else literal_column(item(0), StationId)
        date = literal_column(item(first), Date)
        values = [literal_column(item(first + i), SmallInteger) for i in (1, 2, 3)]
        return select(
            station, date, *(func.nullif(value, MISSING) for value in values)
        ).select_from(func.json_each(bindparam("payload")))

    def _parameters(self, parsed: ParsedFile) -> dict[str, Any]:
        payload = self.payload(parsed).decode()
        if parsed.station_id is None:
            return {"payload": payload}
        return {"station_id": parsed.station_id, "payload": payload}


_SAFE_PATH = re.compile(r"[A-Za-z0-9_./-]+")


class MysqlLoader(Loader):
    """MySQL/MariaDB: ``LOAD DATA LOCAL INFILE`` of the canonical lines, else batched INSERTs."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.local_infile = self._probe_local_infile()

    def bulk_copy(self, parsed: ParsedFile, target: Table) -> None:
        if self.local_infile:
            self._load_data(parsed, target)
        else:
            self._insert_batches(parsed, target)

    def _load_data(self, parsed: ParsedFile, target: Table) -> None:
        fd, path = tempfile.mkstemp(prefix="wxhub-", suffix=".tsv")
        try:
            with os.fdopen(fd, "wb") as stream:
                if parsed.body:
                    stream.write(self.payload(parsed) + b"\n")
            if parsed.station_id is None:
                self.conn.execute(self._load_data_sql(path, target, station_column=True))
            else:
                self.conn.execute(
                    self._load_data_sql(path, target, station_column=False),
                    {"station_id": parsed.station_id},
                )
        finally:
            os.unlink(path)

    @staticmethod
    def _load_data_sql(path: str, target: Table, *, station_column: bool) -> Any:
        # The file name cannot be a bound parameter in LOAD DATA; it is our own temp file.
        if not _SAFE_PATH.fullmatch(path):
            raise ValueError(f"unexpected characters in temporary file name {path!r}")
        columns = ", ".join(VALUE_COLUMNS)
        into = (
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {target.name} CHARACTER SET ascii "
            "FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' "
        )
        if station_column:
            return text(into + f"(station_id, obs_date, {columns})")
        return text(into + f"(obs_date, {columns}) SET station_id = :station_id")

    def _insert_batches(self, parsed: ParsedFile, target: Table) -> None:
        rows = [
            dict(zip(("station_id", "obs_date", *VALUE_COLUMNS), row, strict=True))
            for row in parsed.rows()
        ]
        self.conn.execute(target.insert(), rows)

    def _fold_heap(self) -> None:
        """The heap's rows into the keyed staging table in key order, a day given twice
        merged as MAX would (the larger value, NULL ignored). Not ``GROUP BY``: MySQL and
        MariaDB group in an internal temporary table that moves to disk past
        ``tmp_table_size`` (16 MB, ~150,000 station-days), and a by-year file stages millions
        (3 million at 100x the extract's stations, mid-year); a sort spills in sequential runs
        instead, and rows arriving in key order append to the staging table's key."""
        stmt = mysql_insert(_staging).from_select(
            _COLUMNS,
            select(*(_heap.c[n] for n in _COLUMNS)).order_by(_heap.c.station_id, _heap.c.obs_date),
        )
        merged = {
            name: case(
                (stmt.inserted[name].is_(None), _staging.c[name]),
                (_staging.c[name].is_(None), stmt.inserted[name]),
                else_=func.greatest(_staging.c[name], stmt.inserted[name]),
            )
            for name in VALUE_COLUMNS
        }
        self.conn.execute(stmt.on_duplicate_key_update(merged))
        drop_temporary_table(self.conn, _heap)

    def _probe_local_infile(self) -> bool:
        """Can this server take LOAD DATA LOCAL? Tried once, on the empty staging table."""
        try:
            with self.conn.begin():
                self._load_data(ParsedFile("probe"), _staging)
        except DBAPIError as exc:
            if is_connection_failure(exc):
                raise  # not a refusal: the server went away (the caller retries)
            log.warning(
                "LOAD DATA LOCAL INFILE is refused by the server (%s); loading with batched "
                "INSERTs instead, which is slower. Set local_infile=1 on the server to fix.",
                exc.orig,
            )
            return False
        return True


def loader_class(bind: Connection | Engine) -> type[Loader]:
    """The loader for this backend (known without connecting)."""
    if bind.dialect.name == "sqlite":
        return SqliteLoader
    if bind.dialect.name in ("mysql", "mariadb"):
        return MysqlLoader
    raise NotImplementedError(f"no loader for the {bind.dialect.name} dialect")


def make_loader(conn: Connection) -> Loader:
    """The loader for this connection's backend."""
    return loader_class(conn)(conn)
