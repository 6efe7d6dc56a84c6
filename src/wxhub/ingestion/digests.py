"""Per-station digests of a big file's lines: what lets a reload skip the stations that did not
change since the same file was last loaded.

A night's GHCN-Daily by-year file is the year so far with a day more and a few corrections. Its
SHA-256 tells only that something changed; every line would then be parsed, staged and compared
with the table. Instead, each station's lines are summarised by a digest: the sum, modulo
2**64, of a 64-bit checksum of each of its raw lines (CRC-32 and Adler-32 side by side), with
the number of lines. A file's first load sums them in its parse; a reload of a file whose hash
moved reads it once more for the digests alone, before parsing anything. A sum does not depend
on the order of the lines, so it is the same however the file is cut into chunks and whatever
order its lines come in (a by-year file has none). The digests of a file's last load are kept
(``ingested_station_digests``, written in the load's transaction); a reload parses and stages
only the lines of the stations whose digest moved, and the others cost the checksum alone.

Lines are grouped by their first 11 bytes, a GHCN-Daily station id in both CSV and ``.dly``;
lines whose first bytes are not one (the CSV header, a malformed line) share the group ``""``,
so a new or changed malformed line is parsed again and reported with its line number.

A digest that stayed the same means the station's lines are the same (up to a 64-bit checksum
collision): parsing them again would load exactly what they loaded last time. A row another
file has written since keeps that file's value (a full comparison, ``--force``, would write this
file's again).
"""

from __future__ import annotations

import itertools
import operator
import zlib
from collections.abc import Mapping

from wxhub.domain import GHCN_STATION_ID_PATTERN

# Each line adds 2**96 (the line count sits above the sum of its checksums, which may carry
# past 64 bits: room for 2**32 lines a station) plus its 64-bit checksum.
_COUNT_SHIFT = 96
_COUNT_UNIT = 1 << _COUNT_SHIFT
_MASK = (1 << 64) - 1
_PREFIX = operator.itemgetter(slice(0, 11))
OTHER_LINES = ""  # the group of lines that do not start with a station id


def chunk_digests(chunk: bytes) -> dict[bytes, int]:
    """Per first-11-bytes of the lines of ``chunk`` (whole lines): lines * 2**96 + the sum of
    their checksums. Mostly C loops (split, checksums, slicing); one dictionary update per
    line in Python. Runs in a parser worker."""
    lines = chunk.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the chunk's final newline ends a line, it does not start one
    checksums = map(
        operator.add,
        map(
            operator.or_,
            map(zlib.crc32, lines),
            map(operator.lshift, map(zlib.adler32, lines), itertools.repeat(32)),
        ),
        itertools.repeat(_COUNT_UNIT),
    )
    sums: dict[bytes, int] = {}
    get = sums.get
    for prefix, checksum in zip(map(_PREFIX, lines), checksums, strict=True):
        sums[prefix] = get(prefix, 0) + checksum
    return sums


def group_of(prefix: bytes) -> str:
    """The station a line's first 11 bytes name, or :data:`OTHER_LINES`."""
    text = prefix.decode("ascii", "replace")
    return text if GHCN_STATION_ID_PATTERN.fullmatch(text) else OTHER_LINES


class FileDigests:
    """The digests of one file, summed over its chunks as they are checksummed."""

    def __init__(self) -> None:
        self._sums: dict[str, int] = {}
        # A station's prefix comes back in most chunks of a by-year file: checked once. Only
        # stations' (as many as the stations), not every malformed line's first bytes.
        self._stations: dict[bytes, str] = {}

    def add(self, chunk_sums: dict[bytes, int]) -> None:
        sums, stations = self._sums, self._stations
        for prefix, value in chunk_sums.items():
            group = stations.get(prefix)
            if group is None:
                group = group_of(prefix)
                if group != OTHER_LINES:
                    stations[prefix] = group
            sums[group] = sums.get(group, 0) + value

    def by_station(self) -> dict[str, tuple[int, int]]:
        """station (or ``""``) -> (lines, digest as a signed 64-bit integer, as stored)."""
        return {group: split(total) for group, total in self._sums.items()}


def split(total: int) -> tuple[int, int]:
    """(lines, signed 64-bit digest) of a summed value."""
    digest = total & _MASK
    if digest >= 1 << 63:
        digest -= 1 << 64
    return total >> _COUNT_SHIFT, digest


def changed_stations(
    new: Mapping[str, tuple[int, int]], stored: Mapping[str, tuple[int, int]]
) -> frozenset[str]:
    """The groups whose lines differ from the stored digests (new ones included)."""
    return frozenset(group for group, value in new.items() if stored.get(group) != value)


def lines_of(chunk: bytes, groups: frozenset[str], *, blank: bool = False) -> tuple[bytes, int]:
    """The lines of ``chunk`` in ``groups`` and how many non-empty lines were left out. With
    ``blank``, every other line is made empty instead of left out, so that a parser's line
    numbers stay those of the chunk (for the rare chunk with lines to reject)."""
    lines = chunk.split(b"\n")
    prefixes = list(map(_PREFIX, lines))
    keep = {prefix for prefix in set(prefixes) if group_of(prefix) in groups}
    mask = list(map(keep.__contains__, prefixes))
    kept = list(itertools.compress(lines, mask))
    left_out = (len(lines) - lines.count(b"")) - (len(kept) - kept.count(b""))
    if blank:
        return b"\n".join(map(operator.mul, lines, mask)), left_out
    return b"\n".join(kept), left_out
