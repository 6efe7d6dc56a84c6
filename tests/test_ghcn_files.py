"""tests/ghcn_files.py: the builders write exactly NOAA's published GHCN-Daily layouts, so the
tests built on them test the readers, not the builders.

Column positions are written out here as NOAA publishes them (1-based, inclusive) and turned
into slices by one helper, rather than derived from the builder's own arithmetic.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.ghcn_files import (
    CSV_HEADER,
    csv_line,
    dly_line,
    write_csv,
    write_dly,
)


def columns(line: str, first: int, last: int) -> str:
    """NOAA's 1-based, inclusive columns ``first``..``last``."""
    return line[first - 1 : last]


def test_csv_header_names_the_eight_fields_in_noaa_order() -> None:
    assert CSV_HEADER == "ID,DATE,ELEMENT,DATA_VALUE,M_FLAG,Q_FLAG,S_FLAG,OBS_TIME"


def test_csv_line_puts_the_fields_in_noaa_order() -> None:
    line = csv_line("USC00110072", "20140131", "PRCP", 0, m="T", q="I", s="7", obs_time="0700")
    assert line == "USC00110072,20140131,PRCP,0,T,I,7,0700"
    assert dict(zip(CSV_HEADER.split(","), line.split(","), strict=True)) == {
        "ID": "USC00110072",
        "DATE": "20140131",
        "ELEMENT": "PRCP",
        "DATA_VALUE": "0",
        "M_FLAG": "T",
        "Q_FLAG": "I",
        "S_FLAG": "7",
        "OBS_TIME": "0700",
    }


def test_csv_line_leaves_blank_flags_as_empty_fields() -> None:
    assert csv_line("USC00110072", "20140101", "TMAX", -56) == "USC00110072,20140101,TMAX,-56,,,,"


def test_csv_line_refuses_a_comma_inside_a_field() -> None:
    with pytest.raises(ValueError, match="comma"):
        csv_line("USC00110072", "20140101", "TMAX", "1,5")


def test_write_csv_writes_header_then_lines_with_lf_ends(tmp_path: Path) -> None:
    lines = [csv_line("USC00110072", "20140101", "TMAX", -56, s="7")]
    path = write_csv(tmp_path / "by_station", "USC00110072", lines)
    assert path == tmp_path / "by_station" / "USC00110072.csv"
    assert path.read_bytes() == f"{CSV_HEADER}\nUSC00110072,20140101,TMAX,-56,,,7,\n".encode()


def test_write_csv_without_header_and_gzipped_is_stable(tmp_path: Path) -> None:
    lines = [csv_line("USC00110072", "20140101", "PRCP", 3, s="7")]
    path = write_csv(tmp_path, "2014", lines, header=False, gz=True)
    assert path.name == "2014.csv.gz"
    assert gzip.decompress(path.read_bytes()) == b"USC00110072,20140101,PRCP,3,,,7,\n"
    again = write_csv(tmp_path / "again", "2014", lines, header=False, gz=True)
    assert again.read_bytes() == path.read_bytes()  # same lines, same bytes


def test_dly_line_has_269_characters_and_the_published_columns() -> None:
    line = dly_line(
        "USC00110072",
        2014,
        1,
        "TMAX",
        {1: (-56, "", "", "7"), 2: 12, 31: (317, "L", "X", "H")},
    )
    assert len(line) == 269
    assert columns(line, 1, 11) == "USC00110072"
    assert columns(line, 12, 15) == "2014"
    assert columns(line, 16, 17) == "01"
    assert columns(line, 18, 21) == "TMAX"
    # Day 1: value 22-26, flags 27, 28, 29.
    assert columns(line, 22, 26) == "  -56"
    assert columns(line, 27, 29) == "  7"
    # Day 2: an int is a value with blank flags; value 30-34, flags 35-37.
    assert columns(line, 30, 34) == "   12"
    assert columns(line, 35, 37) == "   "
    # Day 31: value 262-266, flags 267, 268, 269.
    assert columns(line, 262, 266) == "  317"
    assert columns(line, 267, 267) == "L"
    assert columns(line, 268, 268) == "X"
    assert columns(line, 269, 269) == "H"


def test_dly_days_without_a_value_are_missing_with_blank_flags() -> None:
    line = dly_line("USC00110072", 2014, 2, "PRCP", {})
    for day in range(1, 32):
        start = 22 + 8 * (day - 1)
        assert columns(line, start, start + 4) == "-9999", day
        assert columns(line, start + 5, start + 7) == "   ", day


def test_dly_builder_refuses_what_would_shift_a_column() -> None:
    with pytest.raises(ValueError, match="11 characters"):
        dly_line("USC0011007", 2014, 1, "TMAX", {})
    with pytest.raises(ValueError, match="4 characters"):
        dly_line("USC00110072", 2014, 1, "TMX", {})
    with pytest.raises(ValueError, match=r"1\.\.31"):
        dly_line("USC00110072", 2014, 1, "TMAX", {32: 1})
    with pytest.raises(ValueError, match="5 characters"):
        dly_line("USC00110072", 2014, 1, "TMAX", {1: 100000})
    with pytest.raises(ValueError, match="one character"):
        dly_line("USC00110072", 2014, 1, "TMAX", {1: (1, "TT", "", "")})


def test_dly_builder_writes_a_day_past_the_months_end_when_asked() -> None:
    """A test of the reader's rejects needs 30 February; the builder does not judge dates."""
    line = dly_line("USC00110072", 2014, 2, "TMAX", {30: 5})
    assert columns(line, 254, 258) == "    5"


def test_write_dly_writes_lf_ended_lines(tmp_path: Path) -> None:
    lines = [dly_line("USC00110072", 2014, month, "PRCP", {1: 0}) for month in (1, 2)]
    path = write_dly(tmp_path, "USC00110072", lines)
    assert path.name == "USC00110072.dly"
    data = path.read_bytes()
    assert data == ("\n".join(lines) + "\n").encode()
    assert [len(line) for line in data.decode().splitlines()] == [269, 269]
    gz = write_dly(tmp_path / "gz", "USC00110072", lines, gz=True)
    assert gz.name == "USC00110072.dly.gz"
    assert gzip.decompress(gz.read_bytes()) == data
