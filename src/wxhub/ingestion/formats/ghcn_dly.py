"""GHCN-Daily ``.dly``: NOAA's fixed-width files, one line per station, month and element.

Columns (1-based): ID 1-11, YEAR 12-15, MONTH 16-17, ELEMENT 18-21, then for each day d of
1..31 a 5-character VALUE at 22+8(d-1), and its M, Q and S flags in the next three columns:
269 characters in all. -9999 is a missing value, and so is every day past the month's end
whatever it holds. As in the CSV, only TMAX, TMIN and PRCP are kept (others are counted), a
Q-flagged value is not loaded and is counted per flag letter, and the values of a station and
day are pivoted into one row here. A bad value is rejected alone, naming its day; the rest
of its line still loads.
"""

from __future__ import annotations

import calendar
import re

from wxhub.domain import MISSING, STATION_ID_PATTERN
from wxhub.ingestion.formats.checks import cached_date_reason, show
from wxhub.ingestion.formats.pivot import Pivot
from wxhub.ingestion.rows import ParsedFile, normalise
from wxhub.ingestion.selection import StationFilter

LINE_LENGTH = 269
# The shortest line with every day's value: NOAA's files are full width, but an editor or a
# transfer may trim the blank flags of day 31.
_MIN_LENGTH = 266
_FIRST_VALUE = 21  # 0-based offset of day 1's value
_DAY_WIDTH = 8
KEPT_ELEMENTS = {b"TMAX": 0, b"TMIN": 1, b"PRCP": 2}
# A line that the content sniffer takes for .dly: id, year, month, element, day 1's value.
SIGNATURE = re.compile(rb"[A-Z0-9]{11}[0-9]{4}(0[1-9]|1[0-2])[A-Z0-9]{4}[ -]*[0-9]")
_HEAD = re.compile(rb"[0-9]{4}(0[1-9]|1[0-2])[A-Z0-9]{4}")
_VALUE = re.compile(rb" *-?[0-9]{1,5}")
_MISSING_VALUE = b"%5d" % MISSING
_FLAG = re.compile(rb"[A-Za-z0-9 ]")


def parse(
    data: bytes, *, selection: StationFilter | None = None, first_line_no: int = 1
) -> ParsedFile:
    """Parse ``.dly`` content: a whole file, or a chunk of whole lines starting at line
    ``first_line_no`` of its file."""
    pivot = Pivot()
    accepted: dict[str, bool] = {}
    lines = 0
    for line_no, raw in enumerate(normalise(data).split(b"\n"), start=first_line_no):
        line = raw.rstrip()
        if not line:
            continue
        lines += 1
        if not _MIN_LENGTH <= len(line) <= LINE_LENGTH:
            pivot.reject(
                line_no, f"line is {len(line)} characters long, expected {LINE_LENGTH}", raw
            )
            continue
        station_id = line[:11].decode("ascii", "replace").rstrip()
        if not STATION_ID_PATTERN.fullmatch(station_id):
            pivot.reject(line_no, f"station id {show(station_id)} is not a station id", raw)
            continue
        selected = accepted.get(station_id)
        if selected is None:
            selected = accepted[station_id] = selection is None or selection.accepts(station_id)
        if not selected:
            pivot.not_selected += 1
            continue
        if not _HEAD.fullmatch(line, 11, 21):
            reason = f"year, month and element {show(line[11:21].decode('ascii', 'replace'))} "
            pivot.reject(line_no, reason + "are not YYYYMMEEEE (e.g. 198501TMAX)", raw)
            continue
        _add_month(pivot, line_no, raw, station_id, line.ljust(LINE_LENGTH))
    return pivot.parsed(lines_read=lines)


def _add_month(pivot: Pivot, line_no: int, raw: bytes, station_id: str, line: bytes) -> None:
    year, month, element = int(line[11:15]), int(line[15:17]), line[17:21]
    days = calendar.monthrange(year, month)[1]
    column = KEPT_ELEMENTS.get(element)
    for day in range(1, days + 1):
        start = _FIRST_VALUE + _DAY_WIDTH * (day - 1)
        value = line[start : start + 5]
        if value == _MISSING_VALUE:
            continue
        where = f"day {day}: "
        if not _VALUE.fullmatch(value):
            reason = f"{where}value {show(value.decode('ascii', 'replace'))} is not an integer"
            pivot.reject(line_no, reason, raw)
            continue
        if column is None:
            pivot.other_values += 1
            continue
        q_flag = line[start + 6 : start + 7]
        if not _FLAG.fullmatch(q_flag):
            pivot.reject(line_no, f"{where}Q flag {q_flag!r} is not a letter or blank", raw)
            continue
        date = b"%04d%02d%02d" % (year, month, day)
        not_a_date = cached_date_reason(date)
        if not_a_date is not None:
            pivot.reject(line_no, f"{where}{not_a_date}", raw)
            continue
        pivot.add(
            line_no, raw, station_id, date, column, value.strip(), q_flag.decode(), where=where
        )
