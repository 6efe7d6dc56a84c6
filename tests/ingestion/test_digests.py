"""Per-station digests of a big file's lines: what a reload trusts to leave stations unparsed."""

from __future__ import annotations

import random

from tests.ghcn_files import CSV_HEADER, csv_line
from wxhub.ingestion.digests import (
    OTHER_LINES,
    FileDigests,
    changed_stations,
    chunk_digests,
    lines_of,
    split,
)

A, B, C = "USC00110072", "USW00094846", "CA1ON000025"


def by_year_lines(seed: int = 1) -> list[str]:
    rng = random.Random(seed)  # noqa: S311  (reproducible, not a secret)
    lines = [
        csv_line(station, f"201401{day:02d}", element, rng.randint(-100, 300), s="7")
        for station in (A, B, C)
        for day in range(1, 29)
        for element in ("TMAX", "TMIN", "PRCP", "SNWD")
    ]
    rng.shuffle(lines)
    return lines


def digests_of(lines: list[str], chunk_lines: int) -> dict[str, tuple[int, int]]:
    digests = FileDigests()
    for start in range(0, len(lines), chunk_lines):
        chunk = "".join(f"{line}\n" for line in lines[start : start + chunk_lines])
        digests.add(chunk_digests(chunk.encode()))
    return digests.by_station()


def test_a_station_digest_is_the_same_however_the_file_is_cut_and_ordered():
    lines = [CSV_HEADER, *by_year_lines()]
    whole = digests_of(lines, len(lines))
    shuffled = [lines[0], *random.Random(2).sample(lines[1:], len(lines) - 1)]  # noqa: S311

    assert digests_of(lines, 7) == whole
    assert digests_of(shuffled, 50) == whole
    assert sorted(whole) == sorted([OTHER_LINES, A, B, C])  # the header is among other lines
    assert [whole[s][0] for s in (A, B, C, OTHER_LINES)] == [4 * 28, 4 * 28, 4 * 28, 1]


def test_a_changed_flag_value_or_line_moves_only_its_station_digest():
    lines = by_year_lines()
    before = digests_of(lines, 40)
    first_b = next(i for i, line in enumerate(lines) if line.startswith(B))
    flagged = list(lines)
    flagged[first_b] = flagged[first_b].replace(",,7,", ",D,7,")
    dropped = [line for line in lines if line != lines[first_b]]

    for after in (digests_of(flagged, 40), digests_of(dropped, 40)):
        assert changed_stations(after, before) == {B}
    assert changed_stations(before, before) == frozenset()
    assert changed_stations(before, {}) == {A, B, C}  # never seen: every station


def test_lines_that_do_not_start_with_a_station_share_one_group():
    chunk = b"".join(
        [b"ID,DATE,ELEMENT\n", b"garbage\n", b"usc00110072,20140101,TMAX,1,,,,\n", b"\n"]
    )
    assert list(FileDigests.by_station(_added(chunk))) == [OTHER_LINES]
    assert FileDigests.by_station(_added(chunk))[OTHER_LINES][0] == 4


def _added(chunk: bytes) -> FileDigests:
    digests = FileDigests()
    digests.add(chunk_digests(chunk))
    return digests


def test_a_digest_is_stored_as_a_signed_64_bit_integer():
    assert split((3 << 96) + (1 << 64) - 1) == (3, -1)
    assert split((2 << 96) + (7 << 64) + 5) == (2, 5)  # the checksums' carry is dropped


def test_lines_of_picks_a_stations_lines_or_blanks_the_others_keeping_line_numbers():
    chunk = f"{csv_line(A, '20140101', 'TMAX', 1)}\n{csv_line(B, '20140101', 'TMAX', 2)}\n"
    chunk += f"{csv_line(A, '20140102', 'TMAX', 3)}\n"

    kept, left_out = lines_of(chunk.encode(), frozenset({A}))
    blanked, _ = lines_of(chunk.encode(), frozenset({A}), blank=True)

    assert kept.decode().splitlines() == [chunk.splitlines()[0], chunk.splitlines()[2]]
    assert left_out == 1
    assert blanked.decode().split("\n") == [chunk.splitlines()[0], "", chunk.splitlines()[2], ""]
