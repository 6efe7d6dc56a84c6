"""The parser's contract under any input (hypothesis): every non-blank line is loaded or
rejected with a reason, and nothing a file contains makes the parser raise."""

from __future__ import annotations

import datetime as dt

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import noaa_line
from wxhub.domain import MISSING
from wxhub.ingestion.formats.wx import _parse_by_line, _parse_fast, parse
from wxhub.ingestion.rows import REJECT_TEXT_MAX, normalise

STATION = "USC00000001"
PROPERTY_SETTINGS = settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def non_blank_lines(data: bytes) -> int:
    text = normalise(data).decode("utf-8", errors="replace")
    return sum(1 for line in text.split("\n") if line.strip())


# Raw bytes, and text built from the characters a station file is made of (so that many
# examples are near misses rather than noise): digits, signs, tabs, spaces, newlines.
near_miss_text = st.text(alphabet="0123456789-+\t \n\r.e9", max_size=400)
noaa_like_lines = st.lists(
    st.tuples(
        st.dates(min_value=dt.date(1700, 1, 1), max_value=dt.date(2100, 12, 31)),
        st.integers(-100_000, 100_000),
        st.integers(-100_000, 100_000),
        st.integers(-100_000, 100_000),
    ),
    max_size=40,
).map(lambda rows: [noaa_line(d.strftime("%Y%m%d"), a, b, c) for d, a, b, c in rows])


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


@PROPERTY_SETTINGS
@given(noaa_like_lines)
def test_loaded_rows_are_exactly_the_valid_lines_and_the_rest_are_rejected(lines: list[str]):
    parsed = parse("\n".join(lines).encode(), STATION)
    rows = parsed.rows()

    dates = [row[1] for row in rows]
    assert len(dates) == len(set(dates))  # a date is loaded once at most
    assert parsed.records_read == len(lines)
    for _, iso, *values in rows:
        assert dt.date.fromisoformat(iso) >= dt.date(1763, 1, 1)
        assert all(v is None or (v != MISSING and abs(v) <= 100_000) for v in values)
    rejected = {reject.line_no for reject in parsed.rejects}
    assert len(rejected) == len(parsed.rejects)


@PROPERTY_SETTINGS
@given(noaa_like_lines)
def test_the_whole_file_path_agrees_with_the_line_by_line_path(lines: list[str]):
    body = normalise("\n".join(lines).encode())
    fast = _parse_fast(body, STATION)
    reference = _parse_by_line(body.decode(), STATION)

    if fast is not None:  # the fast path only answers files without a single reject
        assert not reference.rejects
        assert fast.rows() == reference.rows()
        assert fast.years == reference.years
