"""Element lines to station-day rows: what the GHCN formats share once a line is read.

GHCN-Daily gives one value per line (CSV) or per day of a month's line (``.dly``); the loader
takes one row per station and day with the three kept elements side by side. The pivot keeps
the rows of one file (or chunk) in a dictionary, with the line each value came from, so a
value given twice is rejected with both line numbers.
"""

from __future__ import annotations

from collections import Counter

from wxhub.domain import MISSING
from wxhub.ingestion.formats.checks import check_value
from wxhub.ingestion.rows import ParsedFile, Reject, make_reject

_ELEMENT_NAMES = ("TMAX", "TMIN", "PRCP")
_MISSING_TEXT = b"%d" % MISSING


class Pivot:
    """Values in, one row per station and day out, with rejects and counts on the way."""

    def __init__(self) -> None:
        # (station, YYYYMMDD) -> [max, min, prcp, line of max, line of min, line of prcp];
        # a value is None until given, MISSING once given as missing or QC-flagged.
        self.days: dict[tuple[str, bytes], list[int | None]] = {}
        self.rejects: list[Reject] = []
        self.qc_removed: Counter[str] = Counter()
        self.other_values = 0
        self.not_selected = 0

    def reject(self, line_no: int, reason: str, raw: bytes) -> None:
        self.rejects.append(make_reject(line_no, reason, raw.decode("utf-8", "replace")))

    def add(  # noqa: PLR0917  (one value and where it came from)
        self,
        line_no: int,
        raw: bytes,
        station_id: str,
        date: bytes,
        column: int,
        value: bytes,
        q_flag: str,
        *,
        where: str = "",
    ) -> None:
        """One value of element ``column`` (0 max, 1 min, 2 prcp) for a station and day;
        ``where`` names the value within its line when a line holds several (a .dly day)."""
        key = (station_id, date)
        row = self.days.get(key)
        if row is not None and row[column] is not None:
            self.reject(
                line_no,
                f"{where}{_ELEMENT_NAMES[column]} of {station_id} on {_iso(date)} "
                f"already given on line {row[column + 3]}",
                raw,
            )
            return
        flag = q_flag.strip()
        if flag:
            number: int | None = MISSING
            self.qc_removed[flag] += 1
        else:
            number, reason = check_value(column, value.decode("ascii", "replace"))
            if reason is not None:
                self.reject(line_no, f"{where}{reason}", raw)
                return
            if number is None:
                number = MISSING
        if row is None:
            row = self.days[key] = [None, None, None, None, None, None]
        row[column] = number
        row[column + 3] = line_no

    def parsed(self, *, lines_read: int) -> ParsedFile:
        """The rows, as one station's canonical lines when there is one station, else many."""
        stations = {station for station, _ in self.days}
        ordered = sorted(self.days.items())
        if len(stations) > 1:
            station_id = None
            body = b"\n".join(
                b"%s\t%s\t%s\t%s\t%s" % (station.encode(), date, *map(_text, row[:3]))
                for (station, date), row in ordered
            )
        else:
            station_id = next(iter(stations)) if stations else None
            body = b"\n".join(
                b"%s\t%s\t%s\t%s" % (date, *map(_text, row[:3])) for (_, date), row in ordered
            )
        return ParsedFile(
            station_id,
            body,
            len(ordered),
            frozenset(int(date[:4]) for _, date in self.days) if station_id else frozenset(),
            self.rejects,
            lines_read=lines_read,
            qc_removed=self.qc_removed,
            other_values=self.other_values,
            lines_not_selected=self.not_selected,
        )


def _text(value: int | None) -> bytes:
    return _MISSING_TEXT if value is None else b"%d" % value


def _iso(date: bytes) -> str:
    text = date.decode()
    return f"{text[:4]}-{text[4:6]}-{text[6:]}"
