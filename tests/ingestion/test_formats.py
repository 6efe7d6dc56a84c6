"""The GHCN-Daily formats: every line is kept, counted or rejected, and pivoted into days.

Files are built here from NOAA's published format (tests/ghcn_files.py), never downloaded.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.conftest import DATA_DIR
from tests.ghcn_files import CSV_HEADER, csv_line, dly_line
from wxhub.ingestion import formats
from wxhub.ingestion.formats import ghcn_csv, ghcn_dly, sniff
from wxhub.ingestion.rows import ParsedFile
from wxhub.ingestion.selection import StationFilter

A = "USC00110072"
B = "USW00094846"
TOO_HOT = "max temperature 7000 is outside -900..600 (tenths of a degree C; -9999 = missing)"


def csv_bytes(lines: list[str], *, header: bool = False) -> bytes:
    return "".join(f"{line}\n" for line in ([CSV_HEADER, *lines] if header else lines)).encode()


def dly_bytes(lines: list[str]) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()


def rows(parsed: ParsedFile) -> list[tuple[object, ...]]:
    """The rows by station and day (a file of many stations gives them in no set order)."""
    return sorted(parsed.rows())


def count_fast_paths(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often the CSV parser's fast path answered, and how often it passed the file on."""
    taken: Counter[str] = Counter()
    real = ghcn_csv._parse_fast

    def counted(body: bytes, selection: StationFilter | None) -> ParsedFile | None:
        result = real(body, selection)
        taken["fast" if result is not None else "by line"] += 1
        return result

    monkeypatch.setattr(ghcn_csv, "_parse_fast", counted)
    return taken


# ---- recognising the format ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "name", "expected"),
    [
        (csv_bytes([csv_line(A, "20140101", "TMAX", 10)], header=True), "x.txt", "ghcn-csv"),
        (csv_bytes([csv_line(A, "20140101", "SNOW", 0)]), "2014", "ghcn-csv"),
        (b"\xef\xbb\xbf" + csv_bytes([csv_line(A, "20140101", "TMAX", 1)]), "A", "ghcn-csv"),
        (dly_bytes([dly_line(A, 2014, 1, "TMAX", {1: 10})]), "A.txt", "ghcn-dly"),
        (b"19850101\t  -22\t -128\t   94\n", "A.csv", "wx"),
        (b"\n\n19850101\t-22\t-128\t94\n", "A.dly", "wx"),
        (b"", "A.csv.gz", "ghcn-csv"),
        (b"", "A.dly", "ghcn-dly"),
        (b"", "A.txt", "wx"),
        (b"garbage\n", "A.txt.gz", "wx"),
        (b"garbage\n", "2014.csv", "ghcn-csv"),
    ],
)
def test_the_format_is_recognised_from_the_content_else_from_the_extension(
    head: bytes, name: str, expected: str
):
    assert sniff(head, name) == expected


# ---- GHCN-Daily CSV ------------------------------------------------------------------------


def test_a_days_elements_become_one_row_in_tenths_and_other_elements_are_counted():
    data = csv_bytes(
        [
            csv_line(A, "20140101", "PRCP", 25, s="7", obs_time="0700"),
            csv_line(A, "20140101", "SNOW", 13, s="7"),
            csv_line(A, "20140101", "TMAX", -22, s="7", obs_time="0700"),
            csv_line(A, "20140101", "TMIN", -128, s="7"),
            csv_line(A, "20140102", "TMAX", 5, m="H"),
            csv_line(A, "20140102", "WT01", 1),
        ],
        header=True,
    )

    parsed = ghcn_csv.parse(data)

    assert parsed.station_id == A
    assert rows(parsed) == [
        (A, "2014-01-01", -22, -128, 25),
        (A, "2014-01-02", 5, None, None),
    ]
    assert (parsed.records_read, parsed.other_values, parsed.rejects) == (6, 2, [])
    assert parsed.years == frozenset({2014})


def test_a_qc_flagged_value_is_not_loaded_and_is_counted_by_its_flag():
    data = csv_bytes(
        [
            csv_line(A, "20140101", "TMAX", 9999, q="X"),  # implausible: flagged, not rejected
            csv_line(A, "20140101", "TMIN", -50),
            csv_line(A, "20140101", "PRCP", 3, q="D"),
            csv_line(A, "20140102", "TMAX", 30, q="D"),
            csv_line(A, "20140103", "SNOW", 5, q="G"),  # not a kept element: not counted as QC
        ]
    )

    parsed = ghcn_csv.parse(data)

    # The day's other elements still load; a day only flagged values mention is a row of
    # missing values (it replaces what a file said before).
    assert rows(parsed) == [(A, "2014-01-01", None, -50, None), (A, "2014-01-02", None, None, None)]
    assert parsed.qc_removed == Counter({"D": 2, "X": 1})
    assert (parsed.other_values, parsed.rejects) == (1, [])


def test_m_and_s_flags_do_not_change_whether_a_value_loads():
    plain = csv_bytes([csv_line(A, "20140101", "PRCP", 0), csv_line(A, "20140101", "TMAX", 10)])
    flagged = csv_bytes(
        [csv_line(A, "20140101", "PRCP", 0, m="T", s="a"), csv_line(A, "20140101", "TMAX", 10, "L")]
    )

    assert rows(ghcn_csv.parse(flagged)) == rows(ghcn_csv.parse(plain))


def test_malformed_lines_are_rejected_with_line_number_and_reason_and_the_rest_loads():
    data = csv_bytes(
        [
            csv_line(A, "20140101", "TMAX", 10),
            "USC00110072,20140102,TMAX,10",
            csv_line(A, "20140230", "TMAX", 10),
            csv_line(A, "20140103", "TMAX", "ten"),
            csv_line(A, "20140104", "TMAX", 7000),
            csv_line(A, "20140105", "TM X", 1),
            csv_line(A, "20140106", "TMIN", 1, q="XY"),
            csv_line("bad id!", "20140107", "TMAX", 1),
            csv_line(A, "20140101", "TMAX", 11),
            csv_line(A, "20140108", "PRCP", -1),
        ],
        header=True,
    )

    parsed = ghcn_csv.parse(data)

    assert rows(parsed) == [(A, "2014-01-01", 10, None, None)]
    assert [(r.line_no, r.reason) for r in parsed.rejects] == [
        (3, f"expected 8 comma-separated fields ({CSV_HEADER}), found 4"),
        (4, "date 20140230 is not a possible date (calendar, 1763 to today)"),
        (5, "TMAX value 'ten' is not an integer"),
        (6, TOO_HOT),
        (7, "element 'TM X' is not a 4-character element code"),
        (8, "Q_FLAG 'XY' is not one letter"),
        (9, "station id 'bad id!' is not a station id"),
        (10, "TMAX of USC00110072 on 2014-01-01 already given on line 2"),
        (11, "precipitation -1 is outside 0..20000 (tenths of a mm; -9999 = missing)"),
    ]
    assert parsed.records_read == 10


def test_a_file_of_many_stations_gives_rows_that_carry_their_station():
    data = csv_bytes(
        [
            csv_line(B, "20140102", "TMAX", 7),
            csv_line(A, "20140101", "TMAX", 10),
            csv_line(B, "20140101", "PRCP", 3),
            csv_line(A, "20140101", "TMIN", -1),
        ]
    )

    parsed = ghcn_csv.parse(data)

    assert parsed.station_id is None
    assert rows(parsed) == [
        (A, "2014-01-01", 10, -1, None),
        (B, "2014-01-01", None, None, 3),
        (B, "2014-01-02", 7, None, None),
    ]


def test_a_selection_keeps_its_stations_lines_and_counts_the_others():
    data = csv_bytes(
        [
            csv_line(A, "20140101", "TMAX", 10),
            csv_line(B, "20140101", "TMAX", 7),
            csv_line("CA1ON000025", "20140101", "TMAX", 1),
            csv_line(B, "20140101", "SNOW", 7),
        ]
    )

    parsed = ghcn_csv.parse(data, selection=StationFilter(patterns=("USW*", "CA*")))

    assert rows(parsed) == [
        ("CA1ON000025", "2014-01-01", 1, None, None),
        (B, "2014-01-01", 7, None, None),
    ]
    assert (parsed.lines_not_selected, parsed.other_values) == (1, 1)


def test_a_chunk_numbers_its_lines_from_where_it_starts_in_its_file():
    parsed = ghcn_csv.parse(
        csv_bytes([csv_line(A, "20140101", "TMAX", 10), csv_line(A, "2014010x", "TMAX", 1)]),
        first_line_no=1001,
    )

    assert [r.line_no for r in parsed.rejects] == [1002]


def test_a_header_only_file_and_an_empty_file_give_nothing():
    for data in (CSV_HEADER.encode(), (CSV_HEADER + "\r\n").encode(), b""):
        parsed = ghcn_csv.parse(data)
        assert (parsed.row_count, parsed.records_read, parsed.rejects) == (0, 0, [])


def test_windows_line_endings_a_bom_and_trailing_blanks_load_the_same():
    lines = [csv_line(A, "20140101", "TMAX", 10), csv_line(A, "20140101", "PRCP", 0)]
    clean = ghcn_csv.parse(csv_bytes(lines, header=True))
    messy = ghcn_csv.parse(
        b"\xef\xbb\xbf" + (CSV_HEADER + "\r\n" + "  \r\n".join(lines) + "  \r\n\r\n").encode()
    )

    assert rows(messy) == rows(clean)
    assert messy.rejects == []


def wx_as_ghcn_csv(wx: bytes, rng: random.Random) -> tuple[bytes, list[tuple[object, ...]]]:
    """A real wx_data file as GHCN CSV lines with noise, and the rows it must give."""
    lines, expected = [], []
    for raw in wx.decode().splitlines():
        date, *values = (v.strip() for v in raw.split("\t"))
        kept: list[int | None] = []
        for element, value in zip(("TMAX", "TMIN", "PRCP"), values, strict=True):
            if value == "-9999":
                kept.append(None)
                continue
            flag = "D" if rng.random() < 0.01 else ""
            lines.append(csv_line(A, date, element, value, q=flag, s="7", obs_time="0700"))
            kept.append(None if flag else int(value))
        if rng.random() < 0.3:
            lines.append(csv_line(A, date, "SNWD", 0, s="7"))
        if any(v != "-9999" for v in values):  # a day with a line, flagged or not
            expected.append((A, f"{date[:4]}-{date[4:6]}-{date[6:]}", *kept))
    return csv_bytes(lines, header=True), expected


def test_a_real_station_as_ghcn_csv_takes_the_fast_path_and_gives_the_wx_rows(
    monkeypatch: pytest.MonkeyPatch,
):
    taken = count_fast_paths(monkeypatch)
    data, expected = wx_as_ghcn_csv((DATA_DIR / f"{A}.txt").read_bytes(), random.Random(7))  # noqa: S311

    parsed = ghcn_csv.parse(data)

    assert taken == Counter({"fast": 1})
    assert rows(parsed) == expected
    assert parsed.rejects == []


@pytest.mark.parametrize("seed", range(12))
def test_the_fast_path_and_the_line_by_line_path_agree(seed: int):
    rng = random.Random(seed)  # noqa: S311  (reproducible noise, not a secret)
    wx_lines = (DATA_DIR / f"{A}.txt").read_bytes().splitlines(keepends=True)
    data, _ = wx_as_ghcn_csv(b"".join(wx_lines[: 200 + seed * 37]), rng)
    body = data.split(b"\n", 1)[1].rstrip(b"\n")
    lines = body.split(b"\n")
    # Damage some files in ways the fast path must notice (then both paths must agree).
    damage = seed % 4
    if damage == 1:
        tmax = [line for line in lines if b",TMAX," in line]
        lines.insert(rng.randrange(len(lines)), rng.choice(tmax))  # a value given twice
    elif damage == 2:
        lines[rng.randrange(len(lines))] = csv_line(A, "20140231", "TMAX", 1).encode()
    elif damage == 3:
        lines[rng.randrange(len(lines))] = csv_line(A, "20140101", "TMAX", "007").encode()
    body = b"\n".join(lines)

    fast = ghcn_csv._parse_fast(body, None)
    by_line = ghcn_csv._parse_by_line(body, None, 1)

    if damage:
        assert fast is None
    else:
        assert fast is not None
        assert (rows(fast), fast.qc_removed, fast.other_values, fast.records_read) == (
            rows(by_line),
            by_line.qc_removed,
            by_line.other_values,
            by_line.records_read,
        )
        assert fast.years == by_line.years


# ---- GHCN-Daily .dly ------------------------------------------------------------------------


def test_a_dly_line_gives_one_value_a_day_from_its_columns():
    data = dly_bytes(
        [
            dly_line(A, 2014, 2, "TMAX", {1: 10, 2: (-5, "", "", "7"), 28: 33}),
            dly_line(A, 2014, 2, "PRCP", {1: (0, "T", "", "7"), 2: 12}),
            dly_line(A, 2014, 2, "SNOW", {1: 3, 2: 4}),
        ]
    )

    parsed = ghcn_dly.parse(data)

    assert rows(parsed) == [
        (A, "2014-02-01", 10, None, 0),
        (A, "2014-02-02", -5, None, 12),
        (A, "2014-02-28", 33, None, None),
    ]
    assert (parsed.records_read, parsed.other_values, parsed.rejects) == (3, 2, [])


def test_days_past_the_months_end_are_missing_whatever_they_hold():
    parsed = ghcn_dly.parse(dly_bytes([dly_line(A, 2014, 2, "TMAX", {28: 1, 29: 2, 30: 3, 31: 4})]))

    assert rows(parsed) == [(A, "2014-02-28", 1, None, None)]
    assert parsed.rejects == []


def test_a_leap_february_keeps_its_29th():
    parsed = ghcn_dly.parse(dly_bytes([dly_line(A, 2012, 2, "TMIN", {29: -3, 30: 9})]))

    assert rows(parsed) == [(A, "2012-02-29", None, -3, None)]


def test_a_qc_flagged_dly_value_is_not_loaded_and_is_counted():
    parsed = ghcn_dly.parse(
        dly_bytes(
            [
                dly_line(A, 2014, 3, "TMAX", {1: (9999, "", "O", "7"), 2: 20}),
                dly_line(A, 2014, 3, "TMIN", {1: (-20, "", "", "7"), 2: (5, "", "I", "7")}),
            ]
        )
    )

    assert rows(parsed) == [(A, "2014-03-01", None, -20, None), (A, "2014-03-02", 20, None, None)]
    assert parsed.qc_removed == Counter({"O": 1, "I": 1})


def test_a_bad_dly_value_is_rejected_alone_naming_its_day_and_its_line_still_loads():
    line = dly_line(A, 2014, 4, "TMAX", {1: 10, 2: 7000, 3: 12})
    short = dly_line(A, 2014, 5, "TMAX", {1: 1})[:100]
    bad_month = dly_line(A, 2014, 5, "TMAX", {1: 1}).replace("201405TMAX", "201413TMAX")
    parsed = ghcn_dly.parse(dly_bytes([line, short, bad_month, line]))

    assert rows(parsed) == [(A, "2014-04-01", 10, None, None), (A, "2014-04-03", 12, None, None)]
    assert [(r.line_no, r.reason) for r in parsed.rejects] == [
        (
            1,
            "day 2: " + TOO_HOT,
        ),
        (2, f"line is {len(short.rstrip())} characters long, expected 269"),
        (3, "year, month and element '201413TMAX' are not YYYYMMEEEE (e.g. 198501TMAX)"),
        (4, "day 1: TMAX of USC00110072 on 2014-04-01 already given on line 1"),
        (
            4,
            "day 2: " + TOO_HOT,
        ),
        (4, "day 3: TMAX of USC00110072 on 2014-04-03 already given on line 1"),
    ]


def test_a_dly_line_with_day_31s_flags_trimmed_still_loads():
    line = dly_line(A, 2014, 1, "PRCP", {31: 44}).rstrip()

    assert len(line) == 266
    assert rows(ghcn_dly.parse(dly_bytes([line]))) == [(A, "2014-01-31", None, None, 44)]


def test_dly_and_csv_of_the_same_values_give_the_same_rows():
    values = {1: 10, 2: -3, 15: 0}
    dly = dly_bytes([dly_line(A, 2014, 7, e, values) for e in ("TMAX", "TMIN", "PRCP")])
    csv = csv_bytes(
        [
            csv_line(A, f"201407{d:02d}", e, v)
            for d, v in values.items()
            for e in ("TMAX", "TMIN", "PRCP")
        ]
    )

    assert rows(ghcn_dly.parse(dly)) == rows(ghcn_csv.parse(csv))


# ---- the dispatcher -------------------------------------------------------------------------


def test_parse_for_loading_makes_the_loaders_payload_for_many_stations():
    data = csv_bytes([csv_line(A, "20140101", "TMAX", 10), csv_line(B, "20140101", "TMIN", -9999)])

    tsv = formats.parse_for_loading(data, "ghcn-csv", "tsv", name_station="2014")
    json_payload = formats.parse_for_loading(data, "ghcn-csv", "json", name_station="2014")

    assert tsv.payload == (
        b"USC00110072\t2014-01-01\t10\t\\N\t\\N\nUSW00094846\t2014-01-01\t\\N\t\\N\t\\N"
    )
    assert json_payload.payload == (
        b'[["USC00110072","2014-01-01",10,-9999,-9999],["USW00094846","2014-01-01",-9999,-9999,-9999]]'
    )


def test_a_wx_file_the_selection_leaves_out_gives_nothing():
    data = (DATA_DIR / f"{A}.txt").read_bytes()

    kept = formats.parse(data, "wx", name_station=A, selection=StationFilter(patterns=("USC*",)))
    left = formats.parse(data, "wx", name_station=A, selection=StationFilter(patterns=("USW*",)))

    assert kept.row_count == formats.parse(data, "wx", name_station=A).row_count > 10_000
    assert left.row_count == 0


def by_year_lines(rng: random.Random, stations: int = 6, days: int = 40) -> list[bytes]:
    """Lines of several stations in no order, with flags and other elements."""
    lines = []
    for n in range(stations):
        station = f"USC00{n:06d}"
        for day in range(days):
            date = f"2014{day // 28 + 1:02d}{day % 28 + 1:02d}"
            for element in ("TMAX", "TMIN", "PRCP", "SNWD"):
                if rng.random() < 0.1:
                    continue  # a value not reported
                flag = "I" if rng.random() < 0.02 else ""
                value = rng.randint(0, 300)
                lines.append(csv_line(station, date, element, value, q=flag, s="7").encode())
    rng.shuffle(lines)
    return lines


@pytest.mark.parametrize("seed", range(10))
def test_for_many_stations_the_fast_path_and_the_line_by_line_path_agree(seed: int):
    rng = random.Random(seed)  # noqa: S311  (reproducible noise, not a secret)
    lines = by_year_lines(rng)
    selection = StationFilter(patterns=("USC0000000[135]",)) if seed % 2 else None
    damage = seed % 5
    if damage == 1:
        kept = [line for line in lines if b",SNWD," not in line]
        lines.insert(rng.randrange(len(lines)), rng.choice(kept))  # a value given twice
    elif damage == 2:
        lines[rng.randrange(len(lines))] = csv_line(A, "20140101", "TMAX", 7000).encode()
    body = b"\n".join(lines)

    fast = ghcn_csv._parse_many_fast(body, selection)
    by_line = ghcn_csv._parse_by_line(body, selection, 1)

    if damage in (1, 2) and (selection is None or (damage == 2 and selection.accepts(A))):
        assert fast is None
    if fast is not None:
        assert rows(fast) == rows(by_line)
        assert (fast.station_id, fast.qc_removed, fast.other_values) == (
            by_line.station_id,
            by_line.qc_removed,
            by_line.other_values,
        )
        assert (fast.records_read, fast.lines_not_selected) == (
            by_line.records_read,
            by_line.lines_not_selected,
        )
    else:
        assert by_line.rejects


def test_a_chunk_of_a_by_year_file_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch):
    taken: Counter[str] = Counter()
    real = ghcn_csv._parse_many_fast

    def counted(body: bytes, selection: StationFilter | None) -> ParsedFile | None:
        result = real(body, selection)
        taken["fast" if result is not None else "by line"] += 1
        return result

    monkeypatch.setattr(ghcn_csv, "_parse_many_fast", counted)
    lines = by_year_lines(random.Random(1))  # noqa: S311
    days = {tuple(line.split(b",")[:2]) for line in lines if b",SNWD," not in line}

    parsed = ghcn_csv.parse(b"\n".join(lines) + b"\n", first_line_no=5001)

    assert taken == Counter({"fast": 1})
    assert parsed.station_id is None
    assert parsed.row_count == len(days)
