"""NOAA's station list, ``ghcnd-stations.txt``: fixed-width lines into station rows and rejects.

One line a station, in fixed columns (1-based, inclusive, as NOAA's readme gives them)::

    ID 1-11   LATITUDE 13-20   LONGITUDE 22-30   ELEVATION 32-37   STATE 39-40   NAME 42-71
    GSN FLAG 73-75   HCN/CRN FLAG 77-79   WMO ID 81-85

NOAA trims the trailing blanks, so a line whose last fields are blank ends early; it must reach
the name (column 42). Blank optional fields and the elevation -999.9 become None. Every
non-blank line ends up as a row or as a :class:`~wxhub.ingestion.rows.Reject` with its line
number and a reason; nothing raises for bad content.

The real file is about 130,000 lines (11 MB). :meth:`StationListParser.rows` is a generator
over the lines, so the loader can take the rows in batches: what grows with the file is only
the map of station ids already seen (to name the first line of a duplicate).

Free of SQLAlchemy, like the observation parser, so a parser worker process can import it.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from decimal import Decimal

from wxhub.domain import ELEVATION_M_MAX, ELEVATION_M_MIN, GHCN_STATION_ID_PATTERN
from wxhub.ingestion.rows import REJECT_TEXT_MAX, Reject

# The file's name at NOAA, and the subject its ledger entries are recorded under (where a
# station file records its station id).
STATION_LIST_NAME = "ghcnd-stations.txt"
LEDGER_SUBJECT = "ghcnd-stations"

MIN_LINE_LENGTH = 42  # through the first character of NAME: the fields before it are required
MAX_LINE_LENGTH = 85  # the end of WMO ID
ELEVATION_MISSING = Decimal("-999.9")

# The columns of each field, as Python slices of the line (0-based, end exclusive).
_ID = slice(0, 11)
_LATITUDE = slice(12, 20)
_LONGITUDE = slice(21, 30)
_ELEVATION = slice(31, 37)
_STATE = slice(38, 40)
_NAME = slice(41, 71)
_GSN_FLAG = slice(72, 75)
_HCN_CRN_FLAG = slice(76, 79)
_WMO_ID = slice(80, 85)
# The blank columns between fields (1-based): a character there means the fields have moved.
_SEPARATORS = (12, 21, 31, 38, 41, 72, 76, 80)

_NUMBER = re.compile(r"-?[0-9]+(?:\.([0-9]+))?")
_STATE_CODE = re.compile(r"[A-Z]{2}")
_WMO = re.compile(r"[0-9]{5}")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class StationRow:
    """One station, with the column names of the ``stations`` table."""

    station_id: str
    country_code: str
    latitude: Decimal
    longitude: Decimal
    elevation_m: Decimal | None
    state: str | None
    name: str
    gsn_flag: str | None
    hcn_crn_flag: str | None
    wmo_id: str | None

    def as_dict(self) -> dict[str, object]:
        """The row as the loader binds it."""
        return {name: getattr(self, name) for name in STATION_COLUMNS}


STATION_COLUMNS = tuple(f.name for f in fields(StationRow))


class _InvalidLineError(ValueError):
    """A line that cannot be loaded; the message is the reject's reason."""


def is_station_list(uri: str) -> bool:
    """Whether a file or object (by its path, key or URI) is NOAA's station list."""
    name = uri.rsplit("/", 1)[-1]
    return name in (STATION_LIST_NAME, f"{STATION_LIST_NAME}.gz")


def iter_lines(data: bytes) -> Iterator[bytes]:
    """The lines of ``data``, one at a time (no list of 130,000 lines is made)."""
    return iter(io.BytesIO(data))


class StationListParser:
    """Parses one station list: iterate :meth:`rows`, then read the rejects and counts."""

    def __init__(self) -> None:
        self.rejects: list[Reject] = []
        self.rows_parsed = 0
        # Station id -> the line it was loaded from, to name it when the id comes again.
        self._line_of: dict[str, int] = {}

    @property
    def records_read(self) -> int:
        """Non-blank lines: every one of them is either a row or a reject."""
        return self.rows_parsed + len(self.rejects)

    def rows(self, lines: Iterable[bytes]) -> Iterator[StationRow]:
        """The valid stations of ``lines`` (bytes, with or without line endings), in order."""
        for line_no, read in enumerate(lines, start=1):
            raw = (read.removeprefix(_BOM) if line_no == 1 else read).rstrip(b" \t\r\n")
            if not raw:
                continue
            try:
                line = raw.decode("ascii")
            except UnicodeDecodeError as exc:
                self._reject(
                    line_no,
                    f"column {exc.start + 1} holds a byte that is not ASCII "
                    "(ghcnd-stations.txt is ASCII, its fields in fixed columns)",
                    raw.decode("ascii", errors="replace"),
                )
                continue
            try:
                row = _parse_line(line)
                first = self._line_of.get(row.station_id)
                if first is not None:
                    raise _InvalidLineError(
                        f"station {row.station_id} is listed again (first on line {first}); "
                        "this line is ignored"
                    )
            except _InvalidLineError as invalid:
                self._reject(line_no, str(invalid), line)
                continue
            self._line_of[row.station_id] = line_no
            self.rows_parsed += 1
            yield row

    def _reject(self, line_no: int, reason: str, line: str) -> None:
        self.rejects.append(Reject(line_no, reason[:REJECT_TEXT_MAX], line[:REJECT_TEXT_MAX]))


def _parse_line(line: str) -> StationRow:
    if len(line) < MIN_LINE_LENGTH:
        raise _InvalidLineError(
            f"line is {len(line)} characters long: too short for a station (the name starts "
            f"in column {MIN_LINE_LENGTH})"
        )
    if len(line) > MAX_LINE_LENGTH:
        raise _InvalidLineError(
            f"line is {len(line)} characters long: longer than a station line "
            f"(the WMO id ends in column {MAX_LINE_LENGTH})"
        )
    for column in _SEPARATORS:
        if column <= len(line) and line[column - 1] != " ":
            raise _InvalidLineError(
                f"column {column} is {line[column - 1]!r}, not a space: the fields are not in "
                "their columns"
            )
    station_id = line[_ID]
    if not GHCN_STATION_ID_PATTERN.fullmatch(station_id):
        raise _InvalidLineError(
            f"station id {station_id!r} is not 2 capital letters and 9 capitals or digits "
            "(e.g. USW00094728)"
        )
    latitude = _decimal(line[_LATITUDE], "latitude", places=4)
    if not -90 <= latitude <= 90:
        raise _InvalidLineError(f"latitude {latitude} is outside -90..90")
    longitude = _decimal(line[_LONGITUDE], "longitude", places=4)
    if not -180 <= longitude <= 180:
        raise _InvalidLineError(f"longitude {longitude} is outside -180..180")
    name = line[_NAME].strip()
    if not name:
        raise _InvalidLineError("the name (columns 42-71) is blank")
    return StationRow(
        station_id=station_id,
        country_code=station_id[:2],
        latitude=latitude,
        longitude=longitude,
        elevation_m=_elevation(line[_ELEVATION]),
        state=_optional(line[_STATE], "state", _STATE_CODE, "two capital letters"),
        name=name,
        gsn_flag=_flag(line[_GSN_FLAG], "GSN flag", ("GSN",)),
        hcn_crn_flag=_flag(line[_HCN_CRN_FLAG], "HCN/CRN flag", ("HCN", "CRN")),
        wmo_id=_optional(line[_WMO_ID], "WMO id", _WMO, "5 digits"),
    )


def _decimal(raw: str, what: str, *, places: int) -> Decimal:
    text = raw.strip()
    match = _NUMBER.fullmatch(text)
    if match is None:
        raise _InvalidLineError(f"{what} {text or '(blank)'!r} is not a number")
    if match.group(1) is not None and len(match.group(1)) > places:
        raise _InvalidLineError(f"{what} {text} has more than {places} decimals")
    return Decimal(text)


def _elevation(raw: str) -> Decimal | None:
    elevation = _decimal(raw, "elevation", places=1)
    if elevation == ELEVATION_MISSING:
        return None
    if not ELEVATION_M_MIN <= elevation <= ELEVATION_M_MAX:
        raise _InvalidLineError(
            f"elevation {elevation} m is outside {ELEVATION_M_MIN}..{ELEVATION_M_MAX} "
            f"({ELEVATION_MISSING} = missing)"
        )
    return elevation


def _optional(raw: str, what: str, pattern: re.Pattern[str], expected: str) -> str | None:
    text = raw.strip()
    if not text:
        return None
    if not pattern.fullmatch(raw):
        raise _InvalidLineError(f"{what} {raw!r} is not {expected} or blank")
    return text


def _flag(raw: str, what: str, allowed: tuple[str, ...]) -> str | None:
    text = raw.strip()
    if not text:
        return None
    if raw not in allowed:
        raise _InvalidLineError(f"{what} {raw!r} is not {' or '.join(allowed)} or blank")
    return text
