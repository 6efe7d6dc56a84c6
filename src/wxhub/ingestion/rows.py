"""What every format parser hands to the loader: station-day rows, rejects and counts.

A parser turns one source file (or one chunk of a big one) into a :class:`ParsedFile`: the
valid station-days as canonical lines, the lines it rejected with their reasons, and the
values it counted without loading them (NOAA quality-control flags, other elements). The
loader never knows which format the rows came from. Kept free of SQLAlchemy so a parser
worker process starts in milliseconds.

Canonical lines are ``YYYYMMDD<TAB>max<TAB>min<TAB>prcp`` for a file of one station (its id
in :attr:`ParsedFile.station_id`) and ``STATION<TAB>YYYYMMDD<TAB>max<TAB>min<TAB>prcp`` for
rows of many stations (``station_id`` None): plain ASCII integers in tenths, -9999 for a
missing value, joined by ``\\n`` with no trailing newline.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from wxhub.domain import MISSING

REJECT_TEXT_MAX = 200
_BOM = b"\xef\xbb\xbf"

# One observation row as the loaders take it: station, ISO date, then tenths (None = missing).
Row = tuple[str, str, int | None, int | None, int | None]
PayloadFormat = Literal["json", "tsv"]


@dataclass(frozen=True, slots=True)
class Reject:
    """A line that was not loaded, and why."""

    line_no: int
    reason: str
    line_text: str


def make_reject(line_no: int, reason: str, line: str) -> Reject:
    """A reject with its texts cut to what the ledger stores."""
    return Reject(line_no, reason[:REJECT_TEXT_MAX], line.rstrip("\n")[:REJECT_TEXT_MAX])


@dataclass(slots=True)
class ParsedFile:
    """The valid station-days of one file (or chunk) as canonical lines, and its rejects.

    The loaders hand the lines to the database's own bulk path (``LOAD DATA`` on MySQL,
    ``json_each`` on SQLite), so no Python object is made per row.
    """

    # The one station of every line; None when the lines carry their station.
    station_id: str | None
    body: bytes = b""
    row_count: int = 0
    # The years of the rows (known for a file of one station: the loader's fast path uses it).
    years: frozenset[int] = frozenset()
    rejects: list[Reject] = field(default_factory=list)
    # Lines read, when a line is not a row (GHCN: a line is one element of one day); None
    # for the wx format, where every non-blank line is a row or a reject.
    lines_read: int | None = None
    # Values not loaded because NOAA's quality control flagged them, per flag letter.
    qc_removed: Counter[str] = field(default_factory=Counter)
    # Values of elements other than TMAX, TMIN and PRCP: counted, not stored.
    other_values: int = 0
    # Lines of stations the run did not select (a by-year file read for a region).
    lines_not_selected: int = 0
    # Lines of a big file's reload left unparsed: their station's lines did not change since
    # the file's last load (:mod:`wxhub.ingestion.digests`).
    lines_unchanged: int = 0
    # Of a chunk of a big file's first load: its lines' digests by their first 11 bytes.
    line_digests: dict[bytes, int] | None = None
    # The body in the form the loader asked for (``payload_format``), when made ahead of time
    # in a worker process; see :func:`make_payload`.
    payload: bytes | None = None
    payload_format: PayloadFormat | None = None

    @property
    def records_read(self) -> int:
        """Lines read: every one of them is loaded, rejected, counted or known unchanged."""
        if self.lines_read is not None:
            return self.lines_read + self.lines_unchanged
        return self.row_count + len(self.rejects)

    @property
    def values_qc_removed(self) -> int:
        return sum(self.qc_removed.values())

    def rows(self) -> list[Row]:
        """The records as typed tuples (station, ISO date, tenths or None)."""
        if not self.body:
            return []
        result: list[Row] = []
        for line in self.body.split(b"\n"):
            fields = line.split(b"\t")
            if self.station_id is None:
                station_id, raw_date, *values = (f.decode() for f in fields)
            else:
                station_id = self.station_id
                raw_date, *values = (f.decode() for f in fields)
            date_text = raw_date.strip()
            iso = f"{date_text[:4]}-{date_text[4:6]}-{date_text[6:]}"
            a, b, c = (None if int(v) == MISSING else int(v) for v in values)
            result.append((station_id, iso, a, b, c))
        return result


def normalise(data: bytes) -> bytes:
    """Drop a byte-order mark, make line endings LF and drop trailing newlines."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data.rstrip(b"\n")


# ---- the loaders' forms of a body ---------------------------------------------------------

# Tokens made once per distinct date or value: the real data has about 11,000 distinct
# dates and a few hundred distinct values, so each is converted once, not 1.7 million times.
_json_row_start: dict[bytes, bytes] = {}
_json_row_end: dict[bytes, bytes] = {}
_tsv_dates: dict[bytes, bytes] = {}
_tsv_values: dict[bytes, bytes] = {}


def _fields(body: bytes) -> list[bytes]:
    """Every field of a canonical body in order: column k is every n-th from k."""
    return body.replace(b"\n", b"\t").split(b"\t")


def _iso_date_bytes(raw: bytes) -> bytes:
    day = raw.strip()
    return day[:4] + b"-" + day[4:6] + b"-" + day[6:8]


def make_payload(
    parsed_body: bytes, payload_format: PayloadFormat, *, multi: bool = False
) -> bytes:
    """The canonical lines in the form a loader hands to its database."""
    if multi:
        return (
            json_rows_multi(parsed_body)
            if payload_format == "json"
            else tsv_rows_multi(parsed_body)
        )
    return json_rows(parsed_body) if payload_format == "json" else tsv_rows(parsed_body)


def payload_of(parsed: ParsedFile, payload_format: PayloadFormat) -> bytes:
    """The rows of ``parsed`` in a loader's form: made by the worker, or here if it was not."""
    if parsed.payload is not None and parsed.payload_format == payload_format:
        return parsed.payload
    return make_payload(parsed.body, payload_format, multi=parsed.station_id is None)


def with_payload(parsed: ParsedFile, payload_format: PayloadFormat) -> ParsedFile:
    """``parsed`` with its loader payload made now (in the worker process)."""
    parsed.payload = make_payload(parsed.body, payload_format, multi=parsed.station_id is None)
    parsed.payload_format = payload_format
    return parsed


def _tsv_columns(fields: list[bytes], first: int, width: int) -> list[object]:
    dates = fields[first::width]
    for raw in set(dates).difference(_tsv_dates):
        _tsv_dates[raw] = _iso_date_bytes(raw)
    values = [fields[k::width] for k in range(first + 1, first + 4)]
    for column in values:
        for raw in set(column).difference(_tsv_values):
            token = raw.strip()
            _tsv_values[raw] = b"\\N" if token == b"%d" % MISSING else token
    canonical = _tsv_values.__getitem__
    return [map(_tsv_dates.__getitem__, dates), *(map(canonical, column) for column in values)]


def tsv_rows(body: bytes) -> bytes:
    """The canonical lines as ``YYYY-MM-DD<TAB>max<TAB>min<TAB>prcp``, ``\\N`` for missing.

    The form MySQL's ``LOAD DATA`` reads straight into the columns, with no per-row
    conversion on the server.
    """
    if not body:
        return b""
    columns = _tsv_columns(_fields(body), 0, 4)
    return b"\n".join(map(b"\t".join, zip(*columns, strict=True)))


def tsv_rows_multi(body: bytes) -> bytes:
    """Lines of many stations as ``STATION<TAB>YYYY-MM-DD<TAB>max<TAB>min<TAB>prcp``."""
    if not body:
        return b""
    fields = _fields(body)
    columns = [fields[0::5], *_tsv_columns(fields, 1, 5)]
    return b"\n".join(map(b"\t".join, zip(*columns, strict=True)))


def json_rows(body: bytes) -> bytes:
    """The canonical lines as a JSON array of ``["YYYY-MM-DD", max, min, prcp]`` arrays.

    SQLite expands it with ``json_each`` in one statement. Built with a dictionary look-up
    per distinct date and precipitation token and one join, not with per-line Python code.
    """
    if not body:
        return b"[]"
    fields = _fields(body)
    dates = fields[0::4]
    for raw in set(dates).difference(_json_row_start):
        _json_row_start[raw] = b'["' + _iso_date_bytes(raw) + b'"'
    for raw in set(fields[3::4]).difference(_json_row_end):
        _json_row_end[raw] = raw + b"]"
    fields[0::4] = map(_json_row_start.__getitem__, dates)
    fields[3::4] = map(_json_row_end.__getitem__, fields[3::4])
    return b"[" + b",".join(fields) + b"]"


def json_rows_multi(body: bytes) -> bytes:
    """Lines of many stations as a JSON array of ``["STATION", "YYYY-MM-DD", max, min, prcp]``."""
    if not body:
        return b"[]"
    fields = _fields(body)
    dates = fields[1::5]
    for raw in set(dates).difference(_tsv_dates):
        _tsv_dates[raw] = _iso_date_bytes(raw)
    fields[0::5] = [b'["' + station + b'"' for station in fields[0::5]]
    fields[1::5] = [b'"' + _tsv_dates[raw] + b'"' for raw in dates]
    for raw in set(fields[4::5]).difference(_json_row_end):
        _json_row_end[raw] = raw + b"]"
    fields[4::5] = map(_json_row_end.__getitem__, fields[4::5])
    return b"[" + b",".join(fields) + b"]"
