"""GHCN-Daily CSV: NOAA's by-station and by-year files, one line per station, day and element.

``ID,DATE,ELEMENT,DATA_VALUE,M_FLAG,Q_FLAG,S_FLAG,OBS_TIME``, with or without that header
line. Only TMAX, TMIN (tenths of a degree C) and PRCP (tenths of a mm) are kept; the values of
other elements are counted. A value with a Q_FLAG failed NOAA's quality control: it is not
loaded (that element is missing that day, the day's other elements still load) and counted
per flag letter. M_FLAG and S_FLAG do not change whether a value loads. The lines of a
station and day are pivoted here into one row, before loading.

A by-station file (one station, the common case by far) takes a fast path: the shape of every
distinct line is checked with digits and letters folded, and the kept values are picked out
with one regular expression per element, so Python does no work per line. Anything unusual
(another station, a bad date, a duplicate, a stray character) sends the file through the
line-by-line path, the reference, which says what is wrong where; tests check both agree.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections import Counter
from dataclasses import dataclass

from wxhub.domain import MISSING, STATION_ID_PATTERN
from wxhub.ingestion.formats.checks import (
    cached_date_reason,
    check_value,
    date_reason,
    show,
    valid_dates,
)
from wxhub.ingestion.formats.pivot import Pivot
from wxhub.ingestion.rows import ParsedFile, normalise
from wxhub.ingestion.selection import StationFilter

HEADER = b"ID,DATE,ELEMENT,DATA_VALUE,M_FLAG,Q_FLAG,S_FLAG,OBS_TIME"
KEPT_ELEMENTS = (b"TMAX", b"TMIN", b"PRCP")
_COLUMN = {element: k for k, element in enumerate(KEPT_ELEMENTS)}
_FIELDS = 8
# A line that the content sniffer takes for GHCN CSV.
SIGNATURE = re.compile(rb"[A-Z0-9]{11},[0-9]{8},[A-Z0-9]{4},")

# Shapes: digits to '9', capitals to 'A', small letters to 'a'.
_SHAPE_TABLE = bytes.maketrans(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    b"9" * 10 + b"A" * 26 + b"a" * 26,
)
_CLEAN_SHAPE = re.compile(rb"[A9]{11},9{8},[A9]{4},-?9{1,5},A?,A?,[A9a]?,(?:9{4})?")
_ELEMENT = re.compile(rb"[A-Z0-9]{4}")
_VALUE = re.compile(rb"-?[0-9]{1,5}")
_FLAG = re.compile(rb"[A-Za-z0-9]?")
# Of a file of many stations (a by-year file): every line's station.
_LINE_STATION = re.compile(rb"\n([A-Z0-9]{11}),")
_MISSING = b"%d" % MISSING


def parse(
    data: bytes, *, selection: StationFilter | None = None, first_line_no: int = 1
) -> ParsedFile:
    """Parse GHCN-Daily CSV: a whole file, or a chunk of whole lines starting at line
    ``first_line_no`` of its file (only line 1 may be the header)."""
    body = normalise(data)
    if first_line_no == 1 and body.startswith(HEADER + b"\n"):
        return _parse(body[len(HEADER) + 1 :], selection, first_line_no + 1)
    if first_line_no == 1 and body == HEADER:
        return ParsedFile(None, lines_read=0)
    return _parse(body, selection, first_line_no)


def _parse(body: bytes, selection: StationFilter | None, first_line_no: int) -> ParsedFile:
    fast = _parse_fast(body, selection)
    if fast is None:
        fast = _parse_many_fast(body, selection)
    if fast is not None:
        return fast
    return _parse_by_line(body, selection, first_line_no)


def _parse_fast(body: bytes, selection: StationFilter | None) -> ParsedFile | None:
    """The whole-file path for a clean file of one station; None when it is not one."""
    station_id = _the_one_clean_station(body)
    if station_id is None:
        return None
    lines = body.count(b"\n") + 1
    if selection is not None and not selection.accepts(station_id):
        return ParsedFile(station_id, lines_read=lines, lines_not_selected=lines)
    kept = _kept_columns(b"\n" + body, _station_patterns(body[:11]), None)
    if kept is None:
        return None
    dates = set().union(*kept.columns)
    if not _all_dates_valid(dates):
        return None
    ordered = sorted(dates)
    return ParsedFile(
        station_id,
        _joined_rows(ordered, kept),
        len(ordered),
        frozenset(int(year) for year in {d[:4] for d in ordered}),
        lines_read=lines,
        qc_removed=kept.qc_removed,
        other_values=lines - kept.lines,
    )


def _the_one_clean_station(body: bytes) -> str | None:
    """The station of a file whose lines are all of one station and of the usual shape."""
    if not body or body[11:12] != b",":
        return None
    station = body[:11]
    if body.count(b"\n" + station + b",") != body.count(b"\n"):
        return None  # several stations (a by-year file): line by line
    if not _clean_shapes(body):
        return None
    return station.decode("ascii")


def _clean_shapes(body: bytes) -> bool:
    """Whether every line has the usual shape: what lets the patterns below skip checks."""
    shapes = set(body.translate(_SHAPE_TABLE).split(b"\n"))
    return all(_CLEAN_SHAPE.fullmatch(shape) for shape in shapes)


# The kept lines' patterns, one per element: (key, 'VALUE,M_FLAG,Q_FLAG') of each line. A
# pattern that starts with a literal (a line end and the station's id) lets the engine jump
# from line to line, and the lines of other elements fail at their fourth character past the
# key. A shape-checked body needs no character classes for the id and the date: '.' is
# checked already. The value and flags stay one token: there are a few hundred distinct ones,
# each read once (:func:`_token_values`), and a flagged value needs no scan of its own.
_Patterns = tuple[re.Pattern[bytes], ...]


def _patterns(key: bytes) -> _Patterns:
    return tuple(
        re.compile(key + b"," + e + rb",(-?[0-9]{1,5},[A-Z]?,[A-Z]?),") for e in KEPT_ELEMENTS
    )


@functools.lru_cache(maxsize=64)
def _station_patterns(station: bytes) -> _Patterns:
    """Of a file of one station: the key is the date."""
    return _patterns(b"\n" + re.escape(station) + b",(.{8})")


# Of a chunk of many stations: the key is 'STATION,YYYYMMDD'.
_MANY_PATTERNS = _patterns(rb"\n(.{11},.{8})")
# Per column, what each token seen loads as: (value, Q flag); value None when not loadable as
# it is (out of range, or not canonical: '007' and '-0' go line by line). Shared by every file
# of a process, like the valid dates.
_token_cache: tuple[dict[bytes, tuple[bytes | None, str]], ...] = ({}, {}, {})


@dataclass(frozen=True, slots=True)
class _Kept:
    """The kept values of a body: per element, key -> token, and token -> value loaded."""

    columns: list[dict[bytes, bytes]]
    values: list[dict[bytes, bytes]]
    qc_removed: Counter[str]
    lines: int


def _kept_columns(text: bytes, patterns: _Patterns, accepted: set[bytes] | None) -> _Kept | None:
    """The kept values; None if an element is given twice for a key or a value is not valid.
    ``accepted``: the stations whose lines count (keys start with the station), or all."""
    columns: list[dict[bytes, bytes]] = []
    values_of: list[dict[bytes, bytes]] = []
    qc_removed: Counter[str] = Counter()
    lines = 0
    for k, pattern in enumerate(patterns):
        found = pattern.findall(text)
        if accepted is not None:
            found = [pair for pair in found if pair[0][:11] in accepted]
        column = dict(found)
        if len(column) != len(found):
            return None  # an element given twice for a day: line by line says where
        values = _token_values(k, set(column.values()), qc_removed, column)
        if values is None:
            return None
        columns.append(column)
        values_of.append(values)
        lines += len(found)
    return _Kept(columns, values_of, qc_removed, lines)


def _token_values(
    index: int, tokens: set[bytes], qc_removed: Counter[str], column: dict[bytes, bytes]
) -> dict[bytes, bytes] | None:
    """token -> value loaded (-9999 when QC-flagged, and for the absent: ``_MISSING``
    itself) for the tokens of column ``index``; None if one is not valid. Counts the
    flagged values of ``column`` into ``qc_removed``."""
    cache = _token_cache[index]
    values = {_MISSING: _MISSING}
    flagged: list[tuple[bytes, str]] = []
    for token in tokens:
        known = cache.get(token)
        if known is None:
            known = cache[token] = _token_value(index, token)
        value, flag = known
        if value is None:
            return None
        values[token] = value
        if flag:
            flagged.append((token, flag))
    if flagged:
        counts = Counter(column.values())
        for token, flag in flagged:
            qc_removed[flag] += counts[token]
    return values


def _token_value(index: int, token: bytes) -> tuple[bytes | None, str]:
    value, _m_flag, q_flag = token.split(b",")
    if q_flag:
        return _MISSING, q_flag.decode()
    text = value.decode()
    ok = check_value(index, text)[1] is None and str(int(text)) == text
    return (value if ok else None), ""


def _joined_rows(keys: list[bytes], kept: _Kept) -> bytes:
    """``key<TAB>max<TAB>min<TAB>prcp`` lines, -9999 where a column has no value: made by
    C loops (map, zip, join), no Python code per row."""
    n = len(keys)
    values = [
        map(value.__getitem__, map(column.get, keys, itertools.repeat(_MISSING, n)))
        for column, value in zip(kept.columns, kept.values, strict=True)
    ]
    return b"\n".join(map(b"\t".join, zip(keys, *values, strict=True)))


def _parse_many_fast(body: bytes, selection: StationFilter | None) -> ParsedFile | None:
    """The fast path for clean lines of many stations (a chunk of a by-year file): Python
    works once per station-day, not per line; None when a line needs explaining."""
    if not body or not _clean_shapes(body):
        return None
    text = b"\n" + body
    lines = body.count(b"\n") + 1
    accepted: set[bytes] | None = None
    accepted_lines = lines
    if selection is not None:  # only then is a line's station needed
        lines_of = Counter(_LINE_STATION.findall(text))
        accepted = {station for station in lines_of if selection.accepts(station.decode("ascii"))}
        accepted_lines = sum(lines_of[station] for station in accepted)
    kept = _kept_columns(text, _MANY_PATTERNS, accepted)
    if kept is None:
        return None
    columns = kept.columns
    # Unsorted (a sort of the keys costs more than the rest of the chunk's work, and the
    # staging table needs no order), but the same every time: first TMAX's days, in the
    # order of the file, then the days with no TMAX, and so on.
    keys = list(columns[0] | columns[1] | columns[2])
    if not _all_dates_valid({key[12:] for key in keys}):
        return None
    stations = {key[:11] for key in keys}
    one = len(stations) <= 1  # one station (or none) kept: its canonical lines, as ever
    body = _joined_rows(keys, kept)  # 'STATION,YYYYMMDD<TAB>...': one comma per line
    if one:
        body = b"\n".join(row[12:] for row in body.split(b"\n")) if keys else b""
    else:
        body = body.replace(b",", b"\t")
    return ParsedFile(
        next(iter(stations)).decode("ascii") if one and stations else None,
        body,
        len(keys),
        frozenset(int(key[12:16]) for key in keys) if one else frozenset(),
        lines_read=lines,
        qc_removed=kept.qc_removed,
        other_values=accepted_lines - kept.lines,
        lines_not_selected=lines - accepted_lines,
    )


def _all_dates_valid(dates: set[bytes]) -> bool:
    for raw in dates.difference(valid_dates):
        if date_reason(raw.decode()) is not None:
            return False
        valid_dates.add(raw)
    return True


def _parse_by_line(body: bytes, selection: StationFilter | None, first_line_no: int) -> ParsedFile:
    """The reference path: one line at a time, with a reason for every reject."""
    pivot = Pivot()
    accepted: dict[str, bool] = {}
    lines = 0
    for line_no, raw in enumerate(body.split(b"\n"), start=first_line_no):
        line = raw.rstrip()
        if not line:
            continue
        lines += 1
        fields = line.split(b",")
        if len(fields) != _FIELDS:
            pivot.reject(
                line_no,
                f"expected {_FIELDS} comma-separated fields ({HEADER.decode()}), "
                f"found {len(fields)}",
                raw,
            )
            continue
        station, date, element, value, _m_flag, q_flag, _s_flag, _obs_time = fields
        station_id = station.decode("ascii", "replace")
        if not STATION_ID_PATTERN.fullmatch(station_id):
            pivot.reject(line_no, f"station id {show(station_id)} is not a station id", raw)
            continue
        selected = accepted.get(station_id)
        if selected is None:
            selected = accepted[station_id] = selection is None or selection.accepts(station_id)
        if not selected:
            pivot.not_selected += 1
            continue
        reason = cached_date_reason(date)
        if reason is not None:
            pivot.reject(line_no, reason, raw)
            continue
        if not _ELEMENT.fullmatch(element):
            pivot.reject(
                line_no,
                f"element {show(element.decode('ascii', 'replace'))} "
                "is not a 4-character element code",
                raw,
            )
            continue
        column = _COLUMN.get(element)
        if column is None:
            pivot.other_values += 1
            continue
        if not _FLAG.fullmatch(q_flag):
            pivot.reject(
                line_no, f"Q_FLAG {show(q_flag.decode('ascii', 'replace'))} is not one letter", raw
            )
            continue
        if not _VALUE.fullmatch(value.strip()):
            name = element.decode()
            pivot.reject(
                line_no,
                f"{name} value {show(value.decode('ascii', 'replace'))} is not an integer",
                raw,
            )
            continue
        pivot.add(line_no, raw, station_id, date, column, value.strip(), q_flag.decode())
    return pivot.parsed(lines_read=lines)
