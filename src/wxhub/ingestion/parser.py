"""Parse and validate one NOAA station file.

Every non-blank line ends up either as a row or as a :class:`Reject` with its line number
and a reason; nothing raises for bad content. Windows line endings, a UTF-8 byte-order mark,
trailing whitespace and blank lines are accepted as they are.

Two paths give the same result. The fast path checks the shape of each *distinct* line (digits
folded to one symbol) and then the *distinct* dates and values, with bytes and set operations
only, so a clean file costs no Python work per line: the interpreter would otherwise be the
bottleneck of the whole job. Any doubt (a blank line, a wrong field count, an impossible date,
a value out of range, a date twice) sends the file through the line-by-line path, which says
exactly what is wrong where. Tests check that both paths agree.
"""

from __future__ import annotations

import datetime as dt
import operator
import re
from dataclasses import dataclass, field
from typing import Literal

from wxhub.domain import (
    MISSING,
    PRECIPITATION_TENTHS_MM_MAX,
    PRECIPITATION_TENTHS_MM_MIN,
    TEMP_TENTHS_C_MAX,
    TEMP_TENTHS_C_MIN,
)

EARLIEST_DATE = dt.date(1763, 1, 1)  # the oldest daily record in GHCN-Daily
REJECT_TEXT_MAX = 200

# One observation row as the loaders take it: station, ISO date, then tenths (None = missing).
Row = tuple[str, str, int | None, int | None, int | None]
PayloadFormat = Literal["json", "tsv"]

_FIELD_NAMES = ("max temperature", "min temperature", "precipitation")
_LIMITS = (
    (TEMP_TENTHS_C_MIN, TEMP_TENTHS_C_MAX, "tenths of a degree C"),
    (TEMP_TENTHS_C_MIN, TEMP_TENTHS_C_MAX, "tenths of a degree C"),
    (PRECIPITATION_TENTHS_MM_MIN, PRECIPITATION_TENTHS_MM_MAX, "tenths of a mm"),
)

# The fast path checks the *shape* of every distinct line with digits folded to '9'.
_SHAPE_TABLE = bytes.maketrans(b"0123456789", b"9" * 10)
_CLEAN_SHAPE = re.compile(rb"9{8}\t[ ]*-?9{1,5}\t[ ]*-?9{1,5}\t[ ]*-?9{1,5}")
_TRAILING_BLANKS = re.compile(rb"[ \t]+$", re.MULTILINE)
# ASCII digits only: int() would also take '+1', '1_0' and other scripts' digits.
_INTEGER = re.compile(r"-?[0-9]+")
_MAX_DIGITS = 9
_DATE = re.compile(r"[0-9]{8}")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Reject:
    """A line that was not loaded, and why."""

    line_no: int
    reason: str
    line_text: str


@dataclass(slots=True)
class ParsedFile:
    """The valid records of one file as canonical lines, and its rejects.

    ``body`` holds one line per valid record, ``YYYYMMDD<TAB>max<TAB>min<TAB>prcp`` joined by
    ``\\n`` with no trailing newline, plain ASCII integers (leading spaces allowed, no leading
    zeros) and -9999 for a missing value. The loaders hand it to the database's own bulk path
    (``LOAD DATA`` on MySQL, ``json_each`` on SQLite) so no Python object is made per row.
    """

    station_id: str
    body: bytes = b""
    row_count: int = 0
    years: frozenset[int] = frozenset()
    rejects: list[Reject] = field(default_factory=list)
    # The body in the form the loader asked for (``payload_format``), when made ahead of time
    # in a worker process; see :func:`make_payload`.
    payload: bytes | None = None
    payload_format: PayloadFormat | None = None

    @property
    def records_read(self) -> int:
        """Non-blank lines: every one of them is either loaded or rejected."""
        return self.row_count + len(self.rejects)

    def rows(self) -> list[Row]:
        """The records as typed tuples (station, ISO date, tenths or None)."""
        if not self.body:
            return []
        result: list[Row] = []
        for line in self.body.split(b"\n"):
            raw_date, *values = line.split(b"\t")
            date_text = raw_date.decode().strip()
            iso = f"{date_text[:4]}-{date_text[4:6]}-{date_text[6:]}"
            a, b, c = (None if int(v) == MISSING else int(v) for v in values)
            result.append((self.station_id, iso, a, b, c))
        return result


# Caches shared by every file a process parses: the real data has about 11,000 distinct dates
# and a few hundred distinct values, so each is validated once, not 1.7 million times.
_valid_dates: set[bytes] = set()
_YEAR = operator.itemgetter(slice(0, 4))
_valid_values: tuple[dict[bytes, bool], ...] = ({}, {}, {})
# Tokens of the loaders' forms of a body, made once per distinct date or value.
_json_row_start: dict[bytes, bytes] = {}
_json_row_end: dict[bytes, bytes] = {}
_tsv_dates: dict[bytes, bytes] = {}
_tsv_values: dict[bytes, bytes] = {}


def parse_for_loading(data: bytes, station_id: str, payload_format: PayloadFormat) -> ParsedFile:
    """Parse, and make the loader's payload too: the whole job of a parser worker process."""
    parsed = parse(data, station_id)
    parsed.payload = make_payload(parsed.body, payload_format)
    parsed.payload_format = payload_format
    return parsed


def _fields(body: bytes) -> list[bytes]:
    """Every field of a canonical body in order: column k is every fourth from k."""
    return body.replace(b"\n", b"\t").split(b"\t")


def _iso_date_bytes(raw: bytes) -> bytes:
    day = raw.strip()
    return day[:4] + b"-" + day[4:6] + b"-" + day[6:8]


def make_payload(body: bytes, payload_format: PayloadFormat) -> bytes:
    """The canonical lines in the form a loader hands to its database."""
    return json_rows(body) if payload_format == "json" else tsv_rows(body)


def tsv_rows(body: bytes) -> bytes:
    """The canonical lines as ``YYYY-MM-DD<TAB>max<TAB>min<TAB>prcp``, ``\\N`` for missing.

    The form MySQL's ``LOAD DATA`` reads straight into the columns, with no per-row
    conversion on the server.
    """
    if not body:
        return b""
    fields = _fields(body)
    dates = fields[0::4]
    for raw in set(dates).difference(_tsv_dates):
        _tsv_dates[raw] = _iso_date_bytes(raw)
    for raw in set(fields).difference(_tsv_values).difference(_tsv_dates):
        token = raw.strip()
        _tsv_values[raw] = b"\\N" if token == b"%d" % MISSING else token
    canonical = _tsv_values.__getitem__
    columns = (
        map(_tsv_dates.__getitem__, dates),
        *(map(canonical, fields[k::4]) for k in (1, 2, 3)),
    )
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


def normalise(data: bytes) -> bytes:
    """Drop a byte-order mark, make line endings LF and drop trailing newlines."""
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return data.rstrip(b"\n")


def parse(data: bytes, station_id: str) -> ParsedFile:
    """Parse the content of one station file."""
    body = normalise(data)
    fast = _parse_fast(body, station_id)
    if fast is not None:
        return fast
    text = body.decode("utf-8", errors="replace")
    return _parse_by_line(text, station_id)


def _parse_fast(body: bytes, station_id: str) -> ParsedFile | None:
    """The whole-file path; None when the file needs the line-by-line path."""
    if not body:
        return ParsedFile(station_id)
    if b" \n" in body or b"\t\n" in body or body.endswith((b" ", b"\t")):
        body = _TRAILING_BLANKS.sub(b"", body)
    shapes = set(body.translate(_SHAPE_TABLE).split(b"\n"))
    if not all(_CLEAN_SHAPE.fullmatch(shape) for shape in shapes):
        return None  # a blank line, a wrong field count, a stray character: explain per line
    # Every line now has exactly four fields, so column k is every fourth field from k.
    fields = _fields(body)
    dates = fields[0::4]
    years = _years_of_valid_dates(dates)
    if years is None or not all(_all_valid(k, fields[k + 1 :: 4]) for k in range(3)):
        return None
    return ParsedFile(station_id, body, len(dates), frozenset(years))


def _years_of_valid_dates(dates: list[bytes]) -> set[int] | None:
    """The years of these dates; None if one is impossible or one appears twice."""
    distinct = set(dates)
    if len(distinct) != len(dates):
        return None
    for raw in distinct.difference(_valid_dates):
        if _iso_date(raw.decode()) is None:
            return None
        _valid_dates.add(raw)
    return set(map(int, set(map(_YEAR, distinct))))


def _all_valid(index: int, column: list[bytes]) -> bool:
    known = _valid_values[index]
    distinct = set(column)
    for raw in distinct.difference(known):
        text = raw.decode().strip()
        # '007' and '-0' are valid but not canonical (JSON refuses them): line-by-line path.
        known[raw] = _check_value(index, text)[1] is None and str(int(text)) == text
    return all(known[raw] for raw in distinct)


def _parse_by_line(text: str, station_id: str) -> ParsedFile:
    """The reference path: one line at a time, with a reason for every reject."""
    rejects: list[Reject] = []
    lines: list[str] = []
    years: set[int] = set()
    first_seen: dict[str, int] = {}
    for line_no, line in enumerate(text.split("\n"), start=1):
        stripped = line.rstrip()
        if not stripped.strip():
            continue
        row_or_reason = _parse_line(stripped, station_id)
        if isinstance(row_or_reason, str):
            rejects.append(_reject(line_no, row_or_reason, line))
            continue
        obs_date = row_or_reason[1]
        if obs_date in first_seen:
            reason = f"date {obs_date} already given on line {first_seen[obs_date]}"
            rejects.append(_reject(line_no, reason, line))
            continue
        first_seen[obs_date] = line_no
        years.add(int(obs_date[:4]))
        values = (MISSING if v is None else v for v in row_or_reason[2:])
        lines.append("\t".join((obs_date.replace("-", ""), *map(str, values))))
    body = "\n".join(lines).encode("ascii")
    return ParsedFile(station_id, body, len(lines), frozenset(years), rejects)


def _parse_line(line: str, station_id: str) -> Row | str:
    fields = line.split("\t")
    if len(fields) != 4:
        return (
            f"expected 4 tab-separated fields (date, max, min, precipitation), found {len(fields)}"
        )
    raw_date = fields[0].strip()
    if not _DATE.fullmatch(raw_date):
        return f"date {_show(raw_date)} is not in YYYYMMDD form"
    iso = _iso_date(raw_date)
    if iso is None:
        return f"date {raw_date} is not a possible date (calendar, {EARLIEST_DATE.year} to today)"
    values: list[int | None] = []
    for index, raw in enumerate(fields[1:]):
        value, reason = _check_value(index, raw.strip())
        if reason is not None:
            return reason
        values.append(value)
    return (station_id, iso, values[0], values[1], values[2])


def _iso_date(raw: str) -> str | None:
    """'20010228' -> '2001-02-28'; None for 20010230, a future date or one before 1763."""
    if not _DATE.fullmatch(raw):
        return None
    try:
        day = dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return None
    # A day ahead of UTC covers every time zone's "today".
    if not EARLIEST_DATE <= day <= dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1):
        return None
    return day.isoformat()


def _check_value(index: int, raw: str) -> tuple[int | None, str | None]:
    """(value, None) for a valid field, (None, reason) otherwise."""
    name = _FIELD_NAMES[index]
    if not _INTEGER.fullmatch(raw):
        return None, f"{name} {_show(raw)} is not an integer"
    low, high, unit = _LIMITS[index]
    outside = f"is outside {low}..{high} ({unit}; {MISSING} = missing)"
    if len(raw.lstrip("-0")) > _MAX_DIGITS:  # int() of thousands of digits raises or crawls
        return None, f"{name} {_show(raw)} {outside}"
    value = int(raw)
    if value == MISSING:
        return None, None
    if not low <= value <= high:
        return None, f"{name} {value} {outside}"
    return value, None


def _show(raw: str) -> str:
    return repr(raw[:40]) if raw else "(empty)"


def _reject(line_no: int, reason: str, line: str) -> Reject:
    return Reject(line_no, reason[:REJECT_TEXT_MAX], line.rstrip("\n")[:REJECT_TEXT_MAX])
