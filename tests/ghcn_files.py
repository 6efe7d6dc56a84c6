"""Builders of small GHCN-Daily files for tests, in NOAA's two formats.

- CSV (``csv/by_station/ID.csv``, ``csv/by_year/YYYY.csv``, and their ``.csv.gz``): one line
  per station, day and element, ``ID,DATE,ELEMENT,DATA_VALUE,M_FLAG,Q_FLAG,S_FLAG,OBS_TIME``,
  with an optional header line of exactly those names.
- ``.dly``: fixed width, one 269-character line per station, year, month and element; for each
  day of 1..31 a 5-character value (-9999 when missing) and the M, Q and S flags.

The builders check only what would shift a column or a field (an id that is not 11
characters, a value wider than 5, a flag longer than one): content that is wrong but well
formed (29 February 2023, a Q flag NOAA never uses, a comma-free garbage value) is written as
given, so a test can build exactly the malformed file it needs to see rejected.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Mapping
from pathlib import Path

CSV_FIELDS = ("ID", "DATE", "ELEMENT", "DATA_VALUE", "M_FLAG", "Q_FLAG", "S_FLAG", "OBS_TIME")
CSV_HEADER = ",".join(CSV_FIELDS)

DLY_MISSING = -9999
DLY_DAYS = 31  # every .dly line has 31 day slots, whatever the month's length
DLY_LINE_LENGTH = 269  # 21 characters of id, year, month and element, then 31 x 8


def csv_line(  # noqa: PLR0917  (positional like the CSV's own fields, in their order)
    station_id: str,
    date: str,
    element: str,
    value: int | str,
    m: str = "",
    q: str = "",
    s: str = "",
    obs_time: str = "",
) -> str:
    """One CSV line, without its line end. ``date`` is ``YYYYMMDD``; ``value`` may be a
    string so a test can write a value that is not a number."""
    fields = (station_id, date, element, str(value), m, q, s, obs_time)
    for field in fields:
        if "," in field or "\n" in field:
            raise ValueError(f"a CSV field cannot hold a comma or a line end: {field!r}")
    return ",".join(fields)


def _write(path: Path, text: str, gz: bool) -> Path:
    """Write ``text`` (ASCII); gzip with no name and a zero time stamp, so the same lines give
    the same bytes (the ledger keys files by content)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = text.encode("ascii")
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    return path


def write_csv(
    folder: Path, name: str, lines: Iterable[str], *, header: bool = True, gz: bool = False
) -> Path:
    """Write ``folder/name.csv`` (or ``.csv.gz``): the header line when ``header``, then
    ``lines``, each ended with LF. ``name`` is a station id for a by-station file
    (``USC00110072``) or a year for a by-year file (``2014``)."""
    rows = [CSV_HEADER, *lines] if header else list(lines)
    text = "".join(f"{row}\n" for row in rows)
    return _write(folder / f"{name}.csv{'.gz' if gz else ''}", text, gz)


def dly_line(
    station_id: str,
    year: int,
    month: int,
    element: str,
    days: Mapping[int, tuple[int, str, str, str] | int],
) -> str:
    """One .dly line, without its line end: ``days`` maps a day (1..31) to ``(value, m, q,
    s)``, or to a bare value with blank flags; every other day is -9999 with blank flags.

    Columns (1-based): id 1-11, year 12-15, month 16-17, element 18-21; day d's value at
    22+8(d-1)..26+8(d-1), right-aligned, then its M, Q and S flags at 27, 28 and 29+8(d-1).
    """
    if len(station_id) != 11:
        raise ValueError(f"a GHCN station id has 11 characters: {station_id!r}")
    if len(element) != 4:
        raise ValueError(f"a GHCN element has 4 characters: {element!r}")
    if not (0 <= year <= 9999 and 1 <= month <= 12):
        raise ValueError(f"year {year} or month {month} does not fit the .dly columns")
    slots = [f"{DLY_MISSING:>5}   "] * DLY_DAYS
    for day, given in days.items():
        if not 1 <= day <= DLY_DAYS:
            raise ValueError(f"a .dly line has days 1..31, not {day}")
        value, m, q, s = (given, "", "", "") if isinstance(given, int) else given
        if not -9999 <= value <= 99999:
            raise ValueError(f"value {value} does not fit in 5 characters")
        if any(len(flag) > 1 for flag in (m, q, s)):
            raise ValueError(f"a flag is one character or blank: {(m, q, s)!r}")
        slots[day - 1] = f"{value:>5}{m or ' '}{q or ' '}{s or ' '}"
    return f"{station_id}{year:04d}{month:02d}{element}{''.join(slots)}"


def write_dly(folder: Path, station_id: str, lines: Iterable[str], *, gz: bool = False) -> Path:
    """Write ``folder/ID.dly`` (or ``.dly.gz``), each line ended with LF."""
    text = "".join(f"{line}\n" for line in lines)
    return _write(folder / f"{station_id}.dly{'.gz' if gz else ''}", text, gz)


def _number(value: float | str, decimals: int) -> str:
    return value if isinstance(value, str) else f"{value:.{decimals}f}"


def stations_line(  # noqa: PLR0917  (the fields of the line, in their order)
    station_id: str,
    latitude: float | str,
    longitude: float | str,
    elevation_m: float | str = -999.9,
    state: str = "",
    name: str = "",
    gsn_flag: str = "",
    hcn_crn_flag: str = "",
    wmo_id: str = "",
) -> str:
    """One line of ``ghcnd-stations.txt`` as NOAA writes it: ID 1-11, LATITUDE 13-20,
    LONGITUDE 22-30, ELEVATION 32-37, STATE 39-40, NAME 42-71, GSN FLAG 73-75, HCN/CRN FLAG
    77-79, WMO ID 81-85, trailing blanks trimmed. Numbers get NOAA's decimals (4 for the
    coordinates, 1 for the elevation); a string is written as given, to make bad lines (one
    wider than its field moves the fields after it)."""
    line = (
        f"{station_id:<11} {_number(latitude, 4):>8} {_number(longitude, 4):>9} "
        f"{_number(elevation_m, 1):>6} {state:<2} {name:<30} {gsn_flag:<3} "
        f"{hcn_crn_flag:<3} {wmo_id:<5}"
    )
    return line.rstrip()


def stations_file(lines: list[str], *, newline: str = "\n") -> bytes:
    """The bytes of a station list of ``lines``, each ending with ``newline``."""
    return "".join(line + newline for line in lines).encode("ascii")
