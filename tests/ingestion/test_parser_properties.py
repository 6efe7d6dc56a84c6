"""The parser's contract under any input (hypothesis): every non-blank line is loaded or
rejected with a reason, exactly the valid lines load, and nothing a file contains makes the
parser raise."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from wxhub.domain import (
    MISSING,
    PRECIPITATION_TENTHS_MM_MAX,
    PRECIPITATION_TENTHS_MM_MIN,
    TEMP_TENTHS_C_MAX,
    TEMP_TENTHS_C_MIN,
)
from wxhub.ingestion.formats.wx import _parse_by_line, _parse_fast, parse
from wxhub.ingestion.rows import REJECT_TEXT_MAX, Row, normalise

STATION = "USC00000001"
EXAMPLES = 400
PROPERTY_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

# The oldest GHCN-Daily record; the newest accepted day is a day ahead of UTC's today.
EARLIEST = dt.date(1763, 1, 1)
TODAY = dt.datetime.now(dt.UTC).date()
LATEST = TODAY + dt.timedelta(days=1)
LIMITS = (
    (TEMP_TENTHS_C_MIN, TEMP_TENTHS_C_MAX),
    (TEMP_TENTHS_C_MIN, TEMP_TENTHS_C_MAX),
    (PRECIPITATION_TENTHS_MM_MIN, PRECIPITATION_TENTHS_MM_MAX),
)
Line = tuple[str, str, str, str]  # date, max, min, precipitation as written in the file


def non_blank_lines(data: bytes) -> int:
    text = normalise(data).decode("utf-8", errors="replace")
    return sum(1 for line in text.split("\n") if line.strip())


def station_line(line: Line) -> str:
    """A line as NOAA writes it, numbers right-aligned in 5-character fields (longer ones
    as they are)."""
    date, *values = line
    return "\t".join((date, *(f"{value:>5}" for value in values)))


# --- what should happen, worked out here rather than taken from the parser -----------------


def expected_date(text: str) -> str | None:
    """The ISO date of an 8-digit YYYYMMDD field in 1763..tomorrow (UTC), else None."""
    if not re.fullmatch(r"[0-9]{8}", text):
        return None
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    return day.isoformat() if EARLIEST <= day <= LATEST else None


def expected_value(text: str, low: int, high: int) -> tuple[bool, int | None]:
    """(valid, tenths or None for missing): ASCII digits with an optional minus, -9999 or
    within the limits; leading zeros and '-0' are valid spellings of their integer."""
    if not re.fullmatch(r"-?[0-9]+", text):
        return False, None
    value = int(text)
    if value == MISSING:
        return True, None
    return low <= value <= high, value


def expected_outcome(lines: list[Line]) -> tuple[list[Row], list[int], bool]:
    """(rows, rejected line numbers, whether every loaded value is spelled canonically):
    a line loads when its date and three values are valid and no earlier loaded line has
    its date."""
    rows: list[Row] = []
    rejected: list[int] = []
    canonical = True
    loaded_dates: set[str] = set()
    for line_no, (date, *texts) in enumerate(lines, start=1):
        iso = expected_date(date)
        checked = [
            expected_value(text, low, high) for text, (low, high) in zip(texts, LIMITS, strict=True)
        ]
        if iso is None or iso in loaded_dates or not all(valid for valid, _ in checked):
            rejected.append(line_no)
            continue
        loaded_dates.add(iso)
        values = [value for _, value in checked]
        rows.append((STATION, iso, values[0], values[1], values[2]))
        canonical = canonical and all(text == str(int(text)) for text in texts)
    return rows, rejected, canonical


# --- generators ----------------------------------------------------------------------------


def _days_clear_of_today(day: dt.date) -> bool:
    # Tomorrow's limit moves at midnight UTC: stay away from it rather than race it.
    return abs((day - TODAY).days) > 2


dates = st.one_of(
    st.dates(min_value=dt.date(1700, 1, 1), max_value=dt.date(2100, 12, 31))
    .filter(_days_clear_of_today)
    .map(lambda day: day.strftime("%Y%m%d")),
    st.sampled_from(
        [
            "17621231",  # the day before the earliest
            "17630101",  # the earliest
            "20000229",  # a leap day
            "19000229",  # not a leap day
            "20010230",
            "20001301",
            "20000100",
            "00000101",
            "1985011",
            "198501011",
            "1985-01-01",
            (TODAY + dt.timedelta(days=3)).strftime("%Y%m%d"),
        ]
    ),
)


def _with_leading_zeros(value: int, zeros: int) -> str:
    sign = "-" if value < 0 else ""
    return f"{sign}{'0' * zeros}{abs(value)}"


def values_around(low: int, high: int) -> st.SearchStrategy[str]:
    """Field texts across the limits and beyond: inside, at and just outside each bound,
    the missing marker and its neighbours, huge numbers, non-canonical spellings and
    non-numbers."""
    edges = [low - 1, low, low + 1, high - 1, high, high + 1, 0, -1, 1]
    edges += [MISSING - 1, MISSING, MISSING + 1, -MISSING, 10 * MISSING]
    return st.one_of(
        st.integers(low, high).map(str),
        st.sampled_from(edges).map(str),
        st.integers(-100_000, 100_000).map(str),
        st.integers(-(10**30), 10**30).map(str),
        st.builds(_with_leading_zeros, st.integers(low - 2, high + 2), st.integers(1, 25)),
        st.sampled_from(["-0", "007", "-007", "-09999", "+1", "1.5", "1e3", "0x10", "1_0", ""]),
        st.sampled_from(["--1", "1-", "abc", "\u0661\u0662", "\uff11", "99999999999999999999"]),
    )


any_line = st.tuples(dates, *(values_around(low, high) for low, high in LIMITS))
# Mostly-valid lines with a small pool of dates, so that repeated dates are common.
pool_dates = st.sampled_from(["19991231", "20000101", "20000102", "20000229", "17630101"])
valid_values = [
    st.one_of(st.integers(low, high), st.just(MISSING)).map(str) for low, high in LIMITS
]
near_valid_line = st.tuples(pool_dates, *valid_values)
station_files = st.lists(st.one_of(any_line, near_valid_line), max_size=40)
# Files the fast path should take: distinct valid dates, canonical values within the limits.
clean_files = st.lists(
    st.tuples(
        st.dates(min_value=EARLIEST, max_value=TODAY - dt.timedelta(days=3)).map(
            lambda day: day.strftime("%Y%m%d")
        ),
        *valid_values,
    ),
    max_size=40,
    unique_by=lambda line: line[0],
)

# Raw bytes, and text built from the characters a station file is made of (so that many
# examples are near misses rather than noise): digits, signs, tabs, spaces, newlines.
near_miss_text = st.text(alphabet="0123456789-+\t \n\r.e9", max_size=400)


# --- properties ----------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(st.binary(max_size=600))
@example(b"\xef\xbb\xbf")
@example(b"\x00\t\x00\t\x00\t\x00")
@example(b"20000101\t" + b"9" * 5000 + b"\t1\t1")
def test_any_bytes_are_loaded_or_rejected_never_raise(data: bytes):
    parsed = parse(data, STATION)

    assert parsed.records_read == non_blank_lines(data)
    for reject in parsed.rejects:
        assert reject.line_no >= 1
        assert reject.reason
        assert len(reject.reason) <= REJECT_TEXT_MAX
        assert len(reject.line_text) <= REJECT_TEXT_MAX


@PROPERTY_SETTINGS
@given(near_miss_text)
def test_near_miss_text_is_loaded_or_rejected_with_a_reason(text: str):
    parsed = parse(text.encode(), STATION)

    assert parsed.records_read == non_blank_lines(text.encode())
    assert all(reject.reason for reject in parsed.rejects)


def test_loaded_rows_are_exactly_the_valid_lines_and_the_rest_are_rejected():
    seen: Counter[str] = Counter()

    @PROPERTY_SETTINGS
    @given(station_files)
    @example([("20000101", "600", "-900", "0"), ("20000102", "-900", "600", "20000")])
    @example([("20000101", "601", "-901", "-1"), ("20000101", "1", "1", "20001")])
    @example([("20000101", "-0", "007", "-9999"), ("20000101", "0", "0", "0")])
    def check(lines: list[Line]) -> None:
        rows, rejected, _ = expected_outcome(lines)

        parsed = parse("\n".join(map(station_line, lines)).encode(), STATION)

        assert parsed.rows() == rows
        assert [reject.line_no for reject in parsed.rejects] == rejected
        assert all(reject.reason for reject in parsed.rejects)
        assert parsed.years == {int(iso[:4]) for _, iso, *_ in rows}
        seen["rows"] += len(rows)
        seen["rejects"] += len(rejected)

    check()
    # Both outcomes in numbers, or "exactly the valid lines" would be checked on one kind.
    assert seen["rows"] >= EXAMPLES, seen
    assert seen["rejects"] >= EXAMPLES, seen


def test_the_whole_file_path_agrees_with_the_line_by_line_path():
    took: Counter[str] = Counter()

    @PROPERTY_SETTINGS
    @given(st.one_of(clean_files, station_files))
    def check(lines: list[Line]) -> None:
        _, rejected, canonical = expected_outcome(lines)
        body = normalise("\n".join(map(station_line, lines)).encode())

        fast = _parse_fast(body, STATION)
        reference = _parse_by_line(body.decode(), STATION)

        # The fast path declines exactly the files with a reject or a non-canonical value
        # ('007', '-0': the loaders need plain integers) and answers every other one.
        assert (fast is not None) == (not rejected and canonical)
        if fast is None:
            took["line by line"] += 1
            return
        took["fast"] += 1
        assert reference.rejects == []
        assert fast.rows() == reference.rows()
        assert fast.row_count == reference.row_count
        assert fast.years == reference.years

    check()
    # Each path taken often, or the agreement would be checked on one of them only.
    assert took["fast"] >= EXAMPLES // 8, took
    assert took["line by line"] >= EXAMPLES // 8, took
