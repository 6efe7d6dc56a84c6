"""GHCN-Daily files built in the tests from NOAA's published format (never downloaded)."""

from __future__ import annotations


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
