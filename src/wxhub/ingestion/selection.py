"""Which stations a run keeps: ids or globs, countries, and (from station metadata) states
and a bounding box, plus this task's shard.

A :class:`StationFilter` is a small, picklable value: the run builds it once, the sources
apply it to object names before anything is downloaded (by-station files), and the parsers
apply it to lines (by-year files, where every station is in one file). Criteria of different
kinds must all hold; the values of one kind are alternatives (``--state IL,IN``).
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import re
from dataclasses import dataclass

from wxhub.domain import shard_of


@dataclass(frozen=True)
class StationFilter:
    """The stations a run keeps; the empty filter keeps every station."""

    # Station ids or shell-style globs ('USC0011*'); empty: any station.
    patterns: tuple[str, ...] = ()
    # The ids' first two letters (GHCN's FIPS country codes); empty: any country.
    countries: frozenset[str] = frozenset()
    # Ids chosen from the station metadata (--state, --bbox); None: not restricted that way.
    ids: frozenset[str] | None = None
    # (K, N): only the stations of shard K of N.
    shard: tuple[int, int] | None = None
    # How the ids were chosen, for logs and the fingerprint ('state=IL,IN bbox=...').
    described_as: str = ""

    @property
    def keeps_everything(self) -> bool:
        return not (self.patterns or self.countries or self.shard) and self.ids is None

    def accepts(self, station_id: str) -> bool:
        """Whether the run keeps this station's data."""
        if self.patterns and not _pattern_regex(self.patterns).fullmatch(station_id):
            return False
        if self.countries and station_id[:2] not in self.countries:
            return False
        if self.ids is not None and station_id not in self.ids:
            return False
        return self.shard is None or shard_of(station_id, self.shard[1]) == self.shard[0]

    def fingerprint(self) -> str:
        """A digest of what this filter keeps: equal for equal filters, on any machine.

        The ledger keys a file whose lines were selected by it, so the same by-year file read
        for another region (or another shard) is read again rather than skipped.
        """
        parts = [
            "patterns=" + ",".join(sorted(self.patterns)),
            "countries=" + ",".join(sorted(self.countries)),
            "ids=" + ("*" if self.ids is None else ",".join(sorted(self.ids))),
            "shard=" + ("" if self.shard is None else f"{self.shard[0]}/{self.shard[1]}"),
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def describe(self) -> str:
        """The filter in words, for the run's log lines."""
        words = []
        if self.patterns:
            words.append("stations " + ",".join(self.patterns))
        if self.countries:
            words.append("country " + ",".join(sorted(self.countries)))
        if self.described_as:
            words.append(f"{self.described_as} ({len(self.ids or ())} stations)")
        if self.shard:
            words.append(f"shard {self.shard[0]}/{self.shard[1]}")
        return "; ".join(words) or "every station"


@dataclass(frozen=True)
class SelectionSpec:
    """What the user asked for (``--stations``, ``--country``, ``--state``, ``--bbox``),
    before the station metadata turns states and a box into station ids."""

    patterns: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    # (min_lon, min_lat, max_lon, max_lat)
    bbox: tuple[float, float, float, float] | None = None

    @property
    def needs_metadata(self) -> bool:
        return bool(self.states) or self.bbox is not None

    def described_as(self) -> str:
        """The metadata part in words ('state IL,IN; bbox -91,37,-87,43')."""
        words = []
        if self.states:
            words.append("state " + ",".join(self.states))
        if self.bbox is not None:
            words.append("bbox " + ",".join(f"{v:g}" for v in self.bbox))
        return "; ".join(words)

    def to_filter(
        self, *, metadata_ids: frozenset[str] | None, shard: tuple[int, int] | None
    ) -> StationFilter:
        """The filter, given the ids the metadata matched (None when not asked for)."""
        return StationFilter(
            patterns=self.patterns,
            countries=frozenset(self.countries),
            ids=metadata_ids,
            shard=shard,
            described_as=self.described_as(),
        )


@functools.lru_cache(maxsize=16)
def _pattern_regex(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # fnmatchcase: 'usc*' does not match 'USC00110072', exactly as ids compare elsewhere.
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


EVERY_STATION = StationFilter()
