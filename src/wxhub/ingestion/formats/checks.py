"""The checks every format applies to a date and a value, with the reasons a reject gives."""

from __future__ import annotations

import datetime as dt
import re

from wxhub.domain import (
    MISSING,
    PRECIPITATION_TENTHS_MM_MAX,
    PRECIPITATION_TENTHS_MM_MIN,
    TEMP_TENTHS_C_MAX,
    TEMP_TENTHS_C_MIN,
)

EARLIEST_DATE = dt.date(1763, 1, 1)  # the oldest daily record in GHCN-Daily

FIELD_NAMES = ("max temperature", "min temperature", "precipitation")
_LIMITS = (
    (TEMP_TENTHS_C_MIN, TEMP_TENTHS_C_MAX, "tenths of a degree C"),
    (TEMP_TENTHS_C_MIN, TEMP_TENTHS_C_MAX, "tenths of a degree C"),
    (PRECIPITATION_TENTHS_MM_MIN, PRECIPITATION_TENTHS_MM_MAX, "tenths of a mm"),
)
# ASCII digits only: int() would also take '+1', '1_0' and other scripts' digits.
_INTEGER = re.compile(r"-?[0-9]+")
_MAX_DIGITS = 9
DATE_PATTERN = re.compile(r"[0-9]{8}")

# Dates ('YYYYMMDD' bytes) already found valid, shared by every file a process parses: the
# real data has about 11,000 distinct dates, each checked once, not 1.7 million times.
valid_dates: set[bytes] = set()


def iso_date(raw: str) -> str | None:
    """'20010228' -> '2001-02-28'; None for 20010230, a future date or one before 1763."""
    if not DATE_PATTERN.fullmatch(raw):
        return None
    try:
        day = dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        return None
    # A day ahead of UTC covers every time zone's "today".
    if not EARLIEST_DATE <= day <= dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1):
        return None
    return day.isoformat()


def date_reason(raw: str) -> str | None:
    """Why ``raw`` is not a date wxhub loads, or None if it is one."""
    if not DATE_PATTERN.fullmatch(raw):
        return f"date {show(raw)} is not in YYYYMMDD form"
    if iso_date(raw) is None:
        return f"date {raw} is not a possible date (calendar, {EARLIEST_DATE.year} to today)"
    return None


def cached_date_reason(raw: bytes) -> str | None:
    """:func:`date_reason` of a 'YYYYMMDD' field, remembering the dates found valid."""
    if raw in valid_dates:
        return None
    reason = date_reason(raw.decode("ascii", "replace"))
    if reason is None:
        valid_dates.add(raw)
    return reason


def check_value(index: int, raw: str) -> tuple[int | None, str | None]:
    """(value, None) for a valid field of column ``index`` (max, min, prcp), (None, reason)
    otherwise; -9999 is a valid missing value (None, None)."""
    name = FIELD_NAMES[index]
    if not _INTEGER.fullmatch(raw):
        return None, f"{name} {show(raw)} is not an integer"
    low, high, unit = _LIMITS[index]
    outside = f"is outside {low}..{high} ({unit}; {MISSING} = missing)"
    if len(raw.lstrip("-0")) > _MAX_DIGITS:  # int() of thousands of digits raises or crawls
        return None, f"{name} {show(raw)} {outside}"
    value = int(raw)
    if value == MISSING:
        return None, None
    if not low <= value <= high:
        return None, f"{name} {value} {outside}"
    return value, None


def show(raw: str) -> str:
    """A field as a reject's reason quotes it: short, and visible when empty."""
    return repr(raw[:40]) if raw else "(empty)"
