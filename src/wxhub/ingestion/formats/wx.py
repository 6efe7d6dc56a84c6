"""The wx format: one station per file (its id in the file name), one line per day.

``YYYYMMDD<TAB>max<TAB>min<TAB>prcp``, tenths of a degree C and of a millimetre, -9999 for a
missing value: the format of the seed's ``data/wx_data`` extract.

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

import operator
import re

from wxhub.domain import MISSING
from wxhub.ingestion.formats.checks import check_value, date_reason, iso_date, valid_dates
from wxhub.ingestion.rows import ParsedFile, Reject, Row, make_reject, normalise

# The fast path checks the *shape* of every distinct line with digits folded to '9'.
# A line that the content sniffer takes for the wx format.
SIGNATURE = re.compile(rb"[ ]*[0-9]{8}[ ]*\t")
_SHAPE_TABLE = bytes.maketrans(b"0123456789", b"9" * 10)
_CLEAN_SHAPE = re.compile(rb"9{8}\t[ ]*-?9{1,5}\t[ ]*-?9{1,5}\t[ ]*-?9{1,5}")
_TRAILING_BLANKS = re.compile(rb"[ \t]+$", re.MULTILINE)
_YEAR = operator.itemgetter(slice(0, 4))
# Values seen valid (and canonical) per column, shared by every file a process parses.
_valid_values: tuple[dict[bytes, bool], ...] = ({}, {}, {})


def _fields(body: bytes) -> list[bytes]:
    """Every field of a canonical body in order: column k is every fourth from k."""
    return body.replace(b"\n", b"\t").split(b"\t")


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
    for raw in distinct.difference(valid_dates):
        if iso_date(raw.decode()) is None:
            return None
        valid_dates.add(raw)
    return set(map(int, set(map(_YEAR, distinct))))


def _all_valid(index: int, column: list[bytes]) -> bool:
    known = _valid_values[index]
    distinct = set(column)
    for raw in distinct.difference(known):
        text = raw.decode().strip()
        # '007' and '-0' are valid but not canonical (JSON refuses them): line-by-line path.
        known[raw] = check_value(index, text)[1] is None and str(int(text)) == text
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
            rejects.append(make_reject(line_no, row_or_reason, line))
            continue
        obs_date = row_or_reason[1]
        if obs_date in first_seen:
            reason = f"date {obs_date} already given on line {first_seen[obs_date]}"
            rejects.append(make_reject(line_no, reason, line))
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
    iso = iso_date(raw_date)
    if iso is None:
        return date_reason(raw_date) or f"date {raw_date} is not possible"
    values: list[int | None] = []
    for index, raw in enumerate(fields[1:]):
        value, reason = check_value(index, raw.strip())
        if reason is not None:
            return reason
        values.append(value)
    return (station_id, iso, values[0], values[1], values[2])
