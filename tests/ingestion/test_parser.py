"""The parser's contract: every non-blank line is a row or a reject with its line number."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable

import pytest

from tests.conftest import DATA_DIR, noaa_line
from wxhub.ingestion.formats.wx import _parse_by_line, _parse_fast, parse
from wxhub.ingestion.rows import REJECT_TEXT_MAX, ParsedFile, Reject, normalise

STATION = "USC00000001"
GOOD = noaa_line("20000101", 10, -20, 0)
GOOD_2 = noaa_line("20000102", 20, -10, 5)
GOOD_3 = noaa_line("20000103", -9999, -30, -9999)
GOOD_ROWS = [
    (STATION, "2000-01-01", 10, -20, 0),
    (STATION, "2000-01-02", 20, -10, 5),
    (STATION, "2000-01-03", None, -30, None),
]


def parse_lines(lines: list[str], *, newline: str = "\n") -> ParsedFile:
    return parse((newline.join(lines) + newline).encode(), STATION)


def sole_reject(parsed: ParsedFile) -> Reject:
    assert len(parsed.rejects) == 1, parsed.rejects
    return parsed.rejects[0]


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def assert_paths_agree(data: bytes, station_id: str = STATION) -> ParsedFile:
    fast = parse(data, station_id)
    reference = _parse_by_line(normalise(data).decode("utf-8", errors="replace"), station_id)
    assert fast.rows() == reference.rows()
    assert fast.rejects == reference.rejects
    assert fast.years == reference.years
    assert fast.row_count == reference.row_count == len(reference.rows())
    assert fast.records_read == reference.records_read
    # The loaders take the body as it is: plain integers, no '+', no leading zeros.
    assert re.sub(rb"\t +", b"\t", fast.body) == reference.body
    return fast


# --- clean input ----------------------------------------------------------------------------------


def test_clean_file_parses_to_typed_rows() -> None:
    parsed = parse_lines([GOOD, GOOD_2, GOOD_3])

    assert parsed.station_id == STATION
    assert parsed.rows() == GOOD_ROWS
    assert parsed.rejects == []
    assert parsed.row_count == 3


def test_missing_value_becomes_none_in_every_column() -> None:
    parsed = parse_lines([noaa_line("20000101", -9999, -9999, -9999)])

    assert parsed.rows() == [(STATION, "2000-01-01", None, None, None)]


def test_years_are_the_years_of_loaded_rows() -> None:
    parsed = parse_lines(
        [
            noaa_line("19991231", 1, 0, 0),
            noaa_line("20000101", 1, 0, 0),
            noaa_line("20050615", 1, 0, 0),
            noaa_line("20100230", 1, 0, 0),  # rejected: its year does not count
        ]
    )

    assert parsed.years == frozenset({1999, 2000, 2005})


def test_records_read_counts_rows_and_rejects_but_not_blank_lines() -> None:
    parsed = parse_lines([GOOD, "", "garbage", "   ", GOOD_2, "\t"])

    assert parsed.row_count == 2
    assert len(parsed.rejects) == 1
    assert parsed.records_read == 3


def test_max_temperature_below_min_temperature_loads() -> None:
    parsed = parse_lines([noaa_line("20000101", -50, 30, 0)])

    assert parsed.rows() == [(STATION, "2000-01-01", -50, 30, 0)]
    assert parsed.rejects == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("007", 7), ("-0", 0), ("-007", -7), ("00000", 0), ("0", 0)],
)
def test_leading_zeros_are_accepted_with_their_integer_value(raw: str, expected: int) -> None:
    parsed = parse_lines([f"20000101\t{raw}\t{raw}\t  1", GOOD_2])

    assert parsed.rejects == []
    assert parsed.rows()[0] == (STATION, "2000-01-01", expected, expected, 1)


def test_values_without_padding_are_accepted() -> None:
    parsed = parse_lines(["20000101\t10\t-20\t0"])

    assert parsed.rows() == [GOOD_ROWS[0]]


@pytest.mark.parametrize("data", [b"", b"\n", b"\n\n\n", b"\r\n\r\n", b"\xef\xbb\xbf"])
def test_empty_file_gives_no_rows_and_no_rejects(data: bytes) -> None:
    parsed = parse(data, STATION)

    assert parsed.rows() == []
    assert parsed.rejects == []
    assert parsed.records_read == 0
    assert parsed.years == frozenset()


@pytest.mark.parametrize("data", [b"   ", b" \n\t\n  \t \n", b"\t\r\n \r\n"])
def test_whitespace_only_file_gives_no_rows_and_no_rejects(data: bytes) -> None:
    parsed = parse(data, STATION)

    assert parsed.rows() == []
    assert parsed.rejects == []
    assert parsed.records_read == 0


# --- layout that is not an error ------------------------------------------------------------------

TOLERATED_LAYOUTS = {
    "crlf": f"{GOOD}\r\n{GOOD_2}\r\n{GOOD_3}\r\n",
    "bare cr": f"{GOOD}\r{GOOD_2}\r{GOOD_3}\r",
    "bom": f"\ufeff{GOOD}\n{GOOD_2}\n{GOOD_3}\n",
    "bom and crlf": f"\ufeff{GOOD}\r\n{GOOD_2}\r\n{GOOD_3}\r\n",
    "trailing spaces": f"{GOOD}   \n{GOOD_2} \n{GOOD_3}  \n",
    "trailing tabs": f"{GOOD}\t\n{GOOD_2}\t\t\n{GOOD_3}\t \n",
    "trailing blanks on last line without newline": f"{GOOD}\n{GOOD_2}\n{GOOD_3} \t",
    "trailing spaces with crlf": f"{GOOD}  \r\n{GOOD_2}\t\r\n{GOOD_3} \r\n",
    "no final newline": f"{GOOD}\n{GOOD_2}\n{GOOD_3}",
    "blank lines at start": f"\n\n{GOOD}\n{GOOD_2}\n{GOOD_3}\n",
    "blank lines at end": f"{GOOD}\n{GOOD_2}\n{GOOD_3}\n\n\n",
    "blank lines in the middle": f"{GOOD}\n\n{GOOD_2}\n   \n{GOOD_3}\n",
    "whitespace-only lines": f"  \n{GOOD}\n\t\n{GOOD_2}\n \t \n{GOOD_3}\n",
}


@pytest.mark.parametrize("text", TOLERATED_LAYOUTS.values(), ids=TOLERATED_LAYOUTS.keys())
def test_tolerated_layout_is_not_an_error(text: str) -> None:
    parsed = parse(text.encode(), STATION)

    assert parsed.rejects == []
    assert parsed.rows() == GOOD_ROWS
    assert parsed.records_read == 3


def test_line_numbers_count_blank_lines_at_the_start() -> None:
    parsed = parse(f"\n\n{GOOD}\n\nbad line\n".encode(), STATION)

    assert sole_reject(parsed).line_no == 5


def test_line_numbers_are_the_same_with_crlf_and_a_bom() -> None:
    parsed = parse(f"\ufeff{GOOD}\r\n\r\n{GOOD_2}\r\nbad line\r\n".encode(), STATION)

    assert sole_reject(parsed).line_no == 4
    assert parsed.row_count == 2


# --- rejects --------------------------------------------------------------------------------------

BAD_LINES = {
    "too few fields": ("20000105\t   10\t  -20", ["4", "found 3"]),
    "only a date": ("20000105", ["4", "found 1"]),
    "too many fields": ("20000105\t   10\t  -20\t    0\t    7", ["4", "found 5"]),
    "space-separated": ("20000105    10   -20     0", ["4", "found 1"]),
    "empty field": ("20000105\t\t  -20\t    0", ["max temperature", "empty"]),
    "non-integer max": ("20000105\t  abc\t  -20\t    0", ["max temperature", "abc", "integer"]),
    "decimal min": ("20000105\t   10\t -2.5\t    0", ["min temperature", "-2.5", "integer"]),
    "non-integer prcp": ("20000105\t   10\t  -20\t    x", ["precipitation", "integer"]),
    "plus sign": ("20000105\t  +10\t  -20\t    0", ["max temperature", "+10", "integer"]),
    "underscore": ("20000105\t   10\t  -20\t  1_0", ["precipitation", "1_0", "integer"]),
    "arabic-indic digits": (
        "20000105\t   \u0661\u0660\t  -20\t    0",
        ["max temperature", "integer"],
    ),
    "fullwidth digits": ("20000105\t   10\t \uff12\uff10\t    0", ["min temperature", "integer"]),
    "double minus": ("20000105\t  --1\t  -20\t    0", ["max temperature", "integer"]),
    "impossible date": ("20010230\t   10\t  -20\t    0", ["20010230", "not a possible date"]),
    "month 13": ("20011301\t   10\t  -20\t    0", ["20011301", "not a possible date"]),
    "day 0": ("20010100\t   10\t  -20\t    0", ["20010100", "not a possible date"]),
    "29 February of a common year": ("19000229\t   10\t  -20\t    0", ["19000229", "possible"]),
    "seven-digit date": ("1985011\t   10\t  -20\t    0", ["1985011", "YYYYMMDD"]),
    "nine-digit date": ("198501011\t   10\t  -20\t    0", ["198501011", "YYYYMMDD"]),
    "iso date": ("1985-01-01\t   10\t  -20\t    0", ["1985-01-01", "YYYYMMDD"]),
    "letters in date": ("1985O1O1\t   10\t  -20\t    0", ["1985O1O1", "YYYYMMDD"]),
    "arabic-indic date": (
        "\u0661\u0669\u0668\u0665\u0660\u0661\u0660\u0661\t   10\t  -20\t    0",
        ["YYYYMMDD"],
    ),
    "empty date": ("\t   10\t  -20\t    0", ["date", "YYYYMMDD"]),
    "date before 1763": ("17621231\t   10\t  -20\t    0", ["17621231", "1763"]),
    "year 0001": ("00010101\t   10\t  -20\t    0", ["00010101", "1763"]),
    "max temperature too high": ("20000105\t  601\t  -20\t    0", ["max temperature", "601"]),
    "max temperature too low": ("20000105\t -901\t  -20\t    0", ["max temperature", "-901"]),
    "min temperature too low": ("20000105\t   10\t -901\t    0", ["min temperature", "-901"]),
    "min temperature too high": ("20000105\t   10\t  601\t    0", ["min temperature", "601"]),
    "negative precipitation": ("20000105\t   10\t  -20\t   -1", ["precipitation", "-1"]),
    "precipitation too high": ("20000105\t   10\t  -20\t20001", ["precipitation", "20001"]),
    "missing marker with extra digit": ("20000105\t-99999\t  -20\t    0", ["max temperature"]),
}


@pytest.mark.parametrize(("bad", "words"), BAD_LINES.values(), ids=list(BAD_LINES))
def test_bad_line_is_rejected_with_line_number_and_reason(bad: str, words: list[str]) -> None:
    parsed = parse_lines([GOOD, GOOD_2, bad, GOOD_3])

    reject = sole_reject(parsed)
    assert reject.line_no == 3
    assert reject.line_text == bad
    for word in words:
        assert word in reject.reason
    assert parsed.rows() == GOOD_ROWS
    assert parsed.records_read == 4


@pytest.mark.parametrize("bad", [bad for bad, _ in BAD_LINES.values()], ids=list(BAD_LINES))
def test_bad_line_is_rejected_on_the_first_and_last_line(bad: str) -> None:
    parsed = parse_lines([bad, GOOD, GOOD_2, GOOD_3, bad.replace("20000105", "20000106", 1)])

    assert [r.line_no for r in parsed.rejects] == [1, 5]
    assert parsed.rows() == GOOD_ROWS


def test_date_in_the_future_is_rejected() -> None:
    future = (utc_today() + dt.timedelta(days=3)).strftime("%Y%m%d")

    parsed = parse_lines([GOOD, noaa_line(future, 10, 0, 0)])

    reject = sole_reject(parsed)
    assert reject.line_no == 2
    assert future in reject.reason
    assert parsed.rows() == [GOOD_ROWS[0]]


def test_date_far_in_the_future_is_rejected() -> None:
    parsed = parse_lines([GOOD, noaa_line("99991231", 10, 0, 0)])

    assert sole_reject(parsed).line_no == 2


@pytest.mark.parametrize(
    "date",
    [dt.date(1763, 1, 1), dt.date(2000, 2, 29), dt.date(2020, 12, 31), utc_today()],
    ids=str,
)
def test_dates_within_the_allowed_range_are_accepted(date: dt.date) -> None:
    parsed = parse_lines([noaa_line(date.strftime("%Y%m%d"), 1, 0, 0)])

    assert parsed.rejects == []
    assert parsed.rows() == [(STATION, date.isoformat(), 1, 0, 0)]
    assert parsed.years == frozenset({date.year})


def test_boundary_values_are_accepted() -> None:
    parsed = parse_lines(
        [
            noaa_line("20000101", 600, -900, 0),
            noaa_line("20000102", -900, 600, 20000),
        ]
    )

    assert parsed.rejects == []
    assert parsed.rows() == [
        (STATION, "2000-01-01", 600, -900, 0),
        (STATION, "2000-01-02", -900, 600, 20000),
    ]


def test_repeated_date_rejects_the_second_occurrence_and_names_the_first_line() -> None:
    repeat = noaa_line("20000101", 99, 9, 9)
    parsed = parse_lines([GOOD, GOOD_2, "", repeat, GOOD_3])

    reject = sole_reject(parsed)
    assert reject.line_no == 4
    assert "2000-01-01" in reject.reason
    assert "line 1" in reject.reason
    assert reject.line_text == repeat
    assert parsed.rows() == GOOD_ROWS


def test_identical_duplicate_line_is_still_rejected() -> None:
    parsed = parse_lines([GOOD, GOOD_2, GOOD, GOOD_3])

    reject = sole_reject(parsed)
    assert reject.line_no == 3
    assert "line 1" in reject.reason


def test_date_after_a_rejected_line_with_the_same_date_loads() -> None:
    parsed = parse_lines([noaa_line("20000101", 999, 0, 0), GOOD])

    assert sole_reject(parsed).line_no == 1
    assert parsed.rows() == [GOOD_ROWS[0]]


def test_invalid_utf8_byte_rejects_only_its_line() -> None:
    data = f"{GOOD}\n".encode() + b"20000102\t   2\xff0\t  -10\t    5\n" + f"{GOOD_3}\n".encode()

    parsed = parse(data, STATION)

    reject = sole_reject(parsed)
    assert reject.line_no == 2
    assert "max temperature" in reject.reason
    assert parsed.rows() == [GOOD_ROWS[0], GOOD_ROWS[2]]


def test_invalid_utf8_byte_in_the_date_rejects_only_its_line() -> None:
    data = f"{GOOD}\n".encode() + b"\xc3\x28000102\t 1\t 1\t 1\n" + f"{GOOD_3}\n".encode()

    parsed = parse(data, STATION)

    assert sole_reject(parsed).line_no == 2
    assert parsed.row_count == 2


def test_reject_text_of_a_very_long_line_is_truncated() -> None:
    long_line = "20000105\t" + "x" * 10_000 + "\t1\t1"

    parsed = parse_lines([GOOD, long_line])

    reject = sole_reject(parsed)
    assert reject.line_no == 2
    assert len(reject.line_text) == REJECT_TEXT_MAX
    assert long_line.startswith(reject.line_text)
    assert len(reject.reason) <= REJECT_TEXT_MAX


def test_value_with_thousands_of_digits_is_rejected_not_raised() -> None:
    parsed = parse_lines([GOOD, "20000105\t" + "1" * 5000 + "\t1\t1", GOOD_2])

    reject = sole_reject(parsed)
    assert reject.line_no == 2
    assert "max temperature" in reject.reason
    assert parsed.rows() == GOOD_ROWS[:2]


def test_every_bad_line_of_a_file_is_reported() -> None:
    lines = [GOOD, *(bad for bad, _ in BAD_LINES.values())]

    parsed = parse_lines(lines)

    assert parsed.rows() == [GOOD_ROWS[0]]
    assert [r.line_no for r in parsed.rejects] == list(range(2, len(lines) + 1))


# --- the fast path and the line-by-line path agree ------------------------------------------------

REAL_SAMPLE = ["USC00110072", "USC00124008", "USC00250435", "USC00333375", "USC00339312"]


@pytest.mark.parametrize("station_id", REAL_SAMPLE)
def test_paths_agree_on_real_files(station_id: str) -> None:
    data = (DATA_DIR / f"{station_id}.txt").read_bytes()

    parsed = assert_paths_agree(data, station_id)

    assert _parse_fast(normalise(data), station_id) is not None
    assert parsed.rejects == []
    assert parsed.row_count == data.count(b"\n")


def test_paths_agree_on_a_real_file_with_a_bad_line_spliced_in() -> None:
    data = (DATA_DIR / "USC00110072.txt").read_bytes()
    lines = data.split(b"\n")
    lines.insert(100, b"19850230\t   10\t    0\t    0")

    parsed = assert_paths_agree(b"\n".join(lines), "USC00110072")

    assert [r.line_no for r in parsed.rejects] == [101]


MIXED_INPUTS = {
    **{f"tolerated {name}": text.encode() for name, text in TOLERATED_LAYOUTS.items()},
    **{
        f"bad {name}": f"{GOOD}\n{bad}\n{GOOD_2}\n".encode() for name, (bad, _) in BAD_LINES.items()
    },
    "leading zeros": b"20000101\t007\t-0\t00\n20000102\t  1\t  0\t  0\n",
    "boundaries": b"20000101\t  600\t -900\t    0\n20000102\t -900\t  600\t20000\n",
    "repeated date": f"{GOOD}\n{GOOD_2}\n{GOOD}\n".encode(),
    "repeated date crlf": f"{GOOD}\r\n{GOOD_2}\r\n{GOOD}\r\n".encode(),
    "invalid utf-8": f"{GOOD}\n".encode() + b"\xff\xfe\n" + f"{GOOD_2}\n".encode(),
    "nul byte": f"{GOOD}\n".encode() + b"20000102\t 1\x00\t 1\t 1\n",
    "blank then bad": b"\n\n\n1985-01-01\t1\t1\t1\n",
    "empty": b"",
    "whitespace only": b" \t \n \n",
    "tmax below tmin": noaa_line("20000101", -10, 10, 0).encode(),
    "leading space before date": f" {GOOD}\n".encode(),
    "mixed endings": f"{GOOD}\r\n{GOOD_2}\n{GOOD_3}\r".encode(),
}


@pytest.mark.parametrize("data", MIXED_INPUTS.values(), ids=list(MIXED_INPUTS))
def test_paths_agree_on_mixed_input(data: bytes) -> None:
    assert_paths_agree(data)


def _random_value(rng: random.Random, low: int, high: int) -> str:
    value = -9999 if rng.random() < 0.1 else rng.randint(low, high)
    return f"{value:>{rng.choice([1, 5, 6])}}"


def _random_good_line(rng: random.Random, date: dt.date) -> str:
    return "\t".join(
        (
            date.strftime("%Y%m%d"),
            _random_value(rng, -900, 600),
            _random_value(rng, -900, 600),
            _random_value(rng, 0, 20000),
        )
    )


def _with_field(index: int, choices: list[str]) -> Callable[[random.Random, str], str]:
    def mutate(rng: random.Random, good: str) -> str:
        fields = good.split("\t")
        fields[rng.randint(1, 3) if index < 0 else index] = rng.choice(choices)
        return "\t".join(fields)

    return mutate


BAD_MUTATIONS: list[Callable[[random.Random, str], str]] = [
    lambda _rng, good: good.rsplit("\t", 1)[0],
    lambda _rng, good: good + "\t    1",
    lambda _rng, good: good.replace("\t", " ", 1),
    lambda rng, good: good + rng.choice(["  ", "\t", " \t "]),  # trailing blanks: accepted
    lambda _rng, good: " " + good,  # a blank before the date
    lambda rng, _good: rng.choice(["x", "\x00", "\ufffd", "#comment", "-9999"]),
    _with_field(-1, ["abc", "1.5", "", " ", "--1", "1-"]),
    _with_field(-1, ["+10", "1_0", "\u0661\u0662", "\uff11"]),
    _with_field(-1, ["007", "-0", "00", "-010"]),  # accepted, but not canonical
    _with_field(-1, ["601", "-901", "20001", "99999", "-10000"]),
    _with_field(3, ["-1"]),
    _with_field(0, ["20010230", "19990229", "20001301", "20000100"]),
    _with_field(0, ["1985011", "1985-01-01", "abcdefgh", "198501011", ""]),
    _with_field(0, ["17621231", "99991231", "00000101"]),
]


def _random_bad_line(rng: random.Random, date: dt.date) -> str:
    return rng.choice(BAD_MUTATIONS)(rng, _random_good_line(rng, date))


# Defects that keep the shape of a clean line, so that only the fast path's value and date
# checks (not its shape check) can send the file to the line-by-line path.
SUBTLE_MUTATIONS: list[Callable[[random.Random, str], str]] = [
    _with_field(-1, ["601", "-901", "99999", "-10000", "-9998"]),
    _with_field(3, ["-1", "20001", "-900"]),
    _with_field(-1, ["007", "-0", "00", " 0600", "-9999 "]),
    _with_field(0, ["20010230", "19990229", "20001301", "20000100", "20000132"]),
    _with_field(0, ["17621231", "99991231", "00000101", "30000101"]),
]


def _random_lines(rng: random.Random, kind: str) -> list[str]:
    start = dt.date(rng.randint(1763, 2020), 1, 1)
    # A small pool of dates, so that messy files repeat some of them.
    pool = [start + dt.timedelta(days=i) for i in range(rng.randint(1, 400))]
    count = rng.randint(0, min(60, len(pool)))
    if kind != "messy":
        lines = [_random_good_line(rng, date) for date in pool[:count]]
        if kind == "subtle" and lines:
            at = rng.randrange(len(lines))
            if rng.random() < 0.2:
                lines.insert(at, lines[rng.randrange(len(lines))])  # a date twice
            else:
                lines[at] = rng.choice(SUBTLE_MUTATIONS)(rng, lines[at])
        return lines
    lines = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.7:
            lines.append(_random_good_line(rng, rng.choice(pool)))
        elif roll < 0.8:
            lines.append(rng.choice(["", " ", "\t", "  \t "]))
        else:
            lines.append(_random_bad_line(rng, rng.choice(pool)))
    return lines


def _random_file(rng: random.Random, kind: str) -> bytes:
    lines = _random_lines(rng, kind)
    newline = rng.choice(["\n", "\n", "\r\n", "\r"])
    text = newline.join(lines)
    if lines and rng.random() < 0.7:
        text += newline * rng.randint(1, 2)
    if rng.random() < 0.2:
        text = "\ufeff" + text
    data = text.encode()
    if kind == "messy" and data and rng.random() < 0.1:
        cut = rng.randrange(len(data))
        data = data[:cut] + rng.choice([b"\xff", b"\xc3", b"\xe2\x82"]) + data[cut:]
    return data


@pytest.mark.parametrize("kind", ["clean", "subtle", "messy"])
def test_paths_agree_on_random_files(kind: str) -> None:
    rng = random.Random(f"wxhub-{kind}")  # noqa: S311  (reproducible test data)
    took_fast_path = 0
    had_rejects = 0
    for _ in range(300):
        data = _random_file(rng, kind)
        parsed = assert_paths_agree(data)
        took_fast_path += _parse_fast(normalise(data), STATION) is not None
        had_rejects += bool(parsed.rejects)
    # Check that the files really are of their kind, or agreement would prove little.
    if kind == "clean":
        assert (took_fast_path, had_rejects) == (300, 0)
    else:
        assert took_fast_path < 30
        assert had_rejects > 200


@pytest.mark.slow
def test_all_real_files_load_without_rejects() -> None:
    files = sorted(DATA_DIR.glob("*.txt"))
    rows = 0
    rejects = 0
    tmax_below_tmin = 0
    for path in files:
        parsed = parse(path.read_bytes(), path.name.removesuffix(".txt"))
        rows += parsed.row_count
        rejects += len(parsed.rejects)
        tmax_below_tmin += sum(
            1 for _, _, hi, lo, _ in parsed.rows() if hi is not None and lo is not None and hi < lo
        )

    assert len(files) == 167
    assert rows == 1_729_957
    assert rejects == 0
    assert tmax_below_tmin == 737
