"""Write GHCN-Daily files (NOAA's CSV and .dly layouts) with the noise real ones carry, for the
tests and benchmarks of the GHCN-Daily ingestion. Deterministic for a seed.

Three commands:

- ``from-wx``: each data/wx_data station file becomes the same station's by-station file
  (``ID.csv``, ``ID.csv.gz`` or ``ID.dly``), so the answer is known: the statistics of
  wx_data with the values named in ``manifest.json`` (the Q-flagged ones) made missing.
- ``by-year``: one by-year CSV of many synthetic stations, in no particular order, for the
  benchmark (5,000 stations x 366 days is about 8.2 million lines, 4.4 million of them TMAX,
  TMIN and PRCP). Seven stations in ten are cooperative (``USC00...``: TMAX, TMIN, PRCP), three
  CoCoRaHS (``US1...``: PRCP only, as real ones); every station has a TMAX, TMIN or PRCP value
  on every day of the year.
- ``change``: a copy of a CSV file with N values changed, as a NOAA correction would, for the
  benchmark of a re-ingest.

The noise, the same for both generators (what a reader has to survive):

- only values that exist are written: a -9999 in wx_data is no CSV line, and -9999 with blank
  flags in a .dly day slot;
- other elements on the same days, about as many values as TMAX, TMIN and PRCP together:
  SNOW and SNWD (every day at some stations, the winter months at most others, 0 most days),
  TOBS at stations with an observation time, TAVG (M flag 'H') at some, WTnn weather types,
  DAPR/MDPR at the end of a run of missing PRCP, wind (AWND, WDF2, WSF2) and pan evaporation
  (EVAP, MNPN, MXPN, WDMV) at a few;
- M flags: PRCP 0 with 'T' (trace) or 'P' (missing, presumed zero), a rare 'B'/'D' on an
  amount, SNOW/SNWD 0 with 'T', TAVG with 'H';
- an S flag on every value, per station and era ('0', '6', '7', 'K', 'H' for cooperative
  stations, changing at a date; 'N' for CoCoRaHS); OBS_TIME ('0700', '1700', ...) on about
  two stations in three, blank on the others (.dly has no observation time);
- the CSV header line on about half the by-station files;
- lines by date, and within a day by element in NOAA-like order (PRCP, SNOW, SNWD, TMAX, TMIN,
  TOBS, then TAVG, DAPR, ... : not alphabetical), .dly lines by month then that order;
- Q flags on a share ``qc_rate`` of the TMAX, TMIN and PRCP values (each value flagged with
  that probability, from the station's random stream): letters from NOAA's set, weighted
  towards the common ones (I, S, K, O, ...); an 'X' (failed bounds check) value, and 15% of
  the others, replaced by an implausible one (9999 or -999 for a temperature, -999 or 29999
  for precipitation). Other elements never carry a Q flag here (real SNOW values sometimes
  do), so "has a Q flag" is exactly "listed in the manifest".

Determinism: a station's values come from its own random stream, seeded by (seed, station id)
(and the year, for by-year), whatever the layout or the other stations: the csv, csv.gz and
dly files of one seed hold the same values and flags. gzip output has no name and a zero time
stamp, so equal content gives equal bytes. Files are written under a ``.part`` name and
renamed when complete.

    python bench/gen_ghcn.py from-wx data/wx_data /tmp/ghcn-csv --layout csv.gz --seed 1
    python bench/gen_ghcn.py by-year /tmp/ghcn/2024.csv.gz --year 2024 --stations 5000 --seed 1
    python bench/gen_ghcn.py change /tmp/ghcn/2024.csv.gz /tmp/ghcn2/2024.csv.gz --changes 100
"""

from __future__ import annotations

import argparse
import calendar
import contextlib
import datetime as dt
import gzip
import io
import json
import math
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO

MISSING = -9999
MANIFEST = "manifest.json"  # not *.csv / *.dly, so a reader of the folder ignores it
LAYOUTS = ("csv", "csv.gz", "dly")
ORDERS = ("shuffled", "station", "date")
CSV_HEADER = "ID,DATE,ELEMENT,DATA_VALUE,M_FLAG,Q_FLAG,S_FLAG,OBS_TIME"
CORE = ("PRCP", "TMAX", "TMIN")
# Within a day (CSV) or a month (.dly): the measured elements first, the rest after; not
# alphabetical (TAVG after TOBS, DAPR after TAVG), so a reader cannot lean on a sort order.
ELEMENT_ORDER = (
    "PRCP", "SNOW", "SNWD", "TMAX", "TMIN", "TOBS", "TAVG", "DAPR", "MDPR",
    "EVAP", "MNPN", "MXPN", "WDMV", "AWND", "WDF2", "WSF2",
    "WT01", "WT03", "WT04", "WT05", "WT06", "WT11",
)  # fmt: skip
_RANK = {element: rank for rank, element in enumerate(ELEMENT_ORDER)}
# NOAA's Q flags, weighted roughly as they occur; W (too warm for snow) is a SNOW flag.
TEMP_Q_FLAGS = {"I": 30, "S": 12, "O": 10, "K": 8, "G": 6, "D": 5, "R": 5, "T": 4, "X": 3}
TEMP_Q_FLAGS |= {"M": 2, "Z": 1}
PRCP_Q_FLAGS = {"I": 12, "S": 12, "K": 10, "N": 8, "D": 8, "G": 6, "X": 6, "O": 6, "M": 4}
PRCP_Q_FLAGS |= {"L": 3, "Z": 2}
IMPLAUSIBLE = {"TMAX": (9999, -999), "TMIN": (9999, -999), "PRCP": (-999, 29999)}
IMPLAUSIBLE_SHARE = 0.15  # of the flagged values other than 'X', which are always implausible
COOP_SOURCES = ("0", "6", "7", "K", "H")  # S flags of US cooperative data, roughly by age
COCORAHS_SOURCE = "N"
OBS_TIMES = ("0700", "0700", "0800", "0600", "1700", "1800", "1600", "2400")
WINTER = frozenset((11, 12, 1, 2, 3))
# The by-year stations: NCDC state codes and postal codes of states that are not in wx_data
# (Illinois 11, Indiana 12, Iowa 13, Nebraska 25, Ohio 33), so no id is a wx_data station's.
COOP_STATES = ("14", "20", "21", "23", "32", "39", "47", "48")
COCORAHS_STATES = ("KS", "MI", "MN", "MO", "ND", "SD", "WI", "WY")
COCORAHS_SHARE = 0.3  # of the by-year stations: CoCoRaHS observers report precipitation only
BUCKET_LINES = 200_000  # lines per shuffle bucket: bounds the shuffle's memory

Day = tuple[str, int, int, int]  # YYYYMMDD, tmax, tmin, prcp (tenths; MISSING when absent)
Value = tuple[str, int, str, str]  # element, value, M flag, Q flag
Change = tuple[str, str, str, int, int]  # station, date, element, old value, new value


# --- Station habits ------------------------------------------------------------------------


@dataclass(frozen=True)
class Era:
    """From ``start`` on (YYYYMMDD), a station's values carry this source and time."""

    start: str
    s_flag: str
    obs_time: str


@dataclass(frozen=True)
class Habits:
    """What a station reports besides its core values; drawn once per station and seed."""

    core: tuple[str, ...]
    eras: tuple[Era, ...]
    header: bool  # by-station CSV only
    snow: str  # "all-year", "winter" or "none"
    tobs: bool
    tavg: bool
    multiday: bool
    weather_types: bool
    wind: bool
    evaporation: bool
    trace_share: float  # of the dry days, the share written as 0 with M flag 'T'


def _era_starts(rng: random.Random, first: str, last: str, count: int) -> list[str]:
    """``count`` era start dates: ``first``, then distinct dates inside the span."""
    start = _ordinal(first)
    span = _ordinal(last) - start
    if span < count:
        return [first]
    inner = sorted(rng.sample(range(start + 1, start + span), count - 1))
    return [first, *(_date_string(o) for o in inner)]


def draw_habits(station_id: str, seed: int, first: str, last: str) -> Habits:
    """The station's habits over its span ``first``..``last``, from its own random stream (the
    same for every layout and, for by-year files, every year)."""
    rng = random.Random(f"{seed}:{station_id}:habits")  # noqa: S311  (test data, not secrets)
    if station_id.startswith("US1"):
        return Habits(
            core=("PRCP",),
            eras=(Era(first, COCORAHS_SOURCE, ""),),
            header=rng.random() < 0.5,
            snow=rng.choices(("winter", "all-year", "none"), (8, 1, 1))[0],
            tobs=False,
            tavg=False,
            multiday=True,
            weather_types=False,
            wind=False,
            evaporation=False,
            trace_share=rng.uniform(0.03, 0.12),
        )
    count = rng.choice((1, 1, 2, 2, 3))
    sources = sorted(rng.sample(range(len(COOP_SOURCES)), count))
    has_time = rng.random() < 0.65
    times = [rng.choice(OBS_TIMES) if has_time else "" for _ in range(count)]
    starts = _era_starts(rng, first, last, count)
    eras = tuple(
        Era(start, COOP_SOURCES[s], t) for start, s, t in zip(starts, sources, times, strict=False)
    )
    return Habits(
        core=CORE,
        eras=eras,
        header=rng.random() < 0.5,
        snow=rng.choices(("all-year", "winter", "none"), (5, 4, 1))[0],
        tobs=has_time and rng.random() < 0.8,
        tavg=rng.random() < 0.35,
        multiday=rng.random() < 0.5,
        weather_types=rng.random() < 0.5,
        wind=rng.random() < 0.12,
        evaporation=rng.random() < 0.12,
        trace_share=rng.uniform(0.03, 0.12),
    )


# --- The noise: a station's days become its GHCN values ------------------------------------


@dataclass(frozen=True)
class FlaggedValue:
    """A value written with a Q flag: ``value`` as written, ``original`` the source's."""

    station_id: str
    date: str
    element: str
    flag: str
    value: int
    original: int


@dataclass
class Tally:
    """Counts of what was written, for the manifest."""

    values: int = 0
    core_values: Counter[str] = field(default_factory=Counter)
    other_values: Counter[str] = field(default_factory=Counter)
    m_flags: Counter[str] = field(default_factory=Counter)  # "ELEMENT:FLAG"
    s_flags: Counter[str] = field(default_factory=Counter)
    implausible: int = 0
    flagged: list[FlaggedValue] = field(default_factory=list)


def _flag(rng: random.Random, element: str) -> tuple[str, bool]:
    """A Q flag letter for ``element``, and whether its value is made implausible."""
    weights = PRCP_Q_FLAGS if element == "PRCP" else TEMP_Q_FLAGS
    letter = rng.choices(tuple(weights), tuple(weights.values()))[0]
    return letter, letter == "X" or rng.random() < IMPLAUSIBLE_SHARE


def _snowfall_mm(rng: random.Random, prcp: int) -> int:
    """Snowfall of ``prcp`` tenths of mm of melted precipitation (8 to 15 times its depth),
    in mm as NOAA converts tenths of an inch."""
    tenths_inch = max(1, round(prcp / 10 * rng.uniform(8, 15) / 2.54))
    return round(tenths_inch * 2.54)


class _Station:
    """Turns one station's days, in date order, into its values, one day at a time.

    Everything random comes from ``rng`` in a fixed order, so the output is a function of the
    seed and the station's days alone.
    """

    def __init__(
        self, station_id: str, habits: Habits, rng: random.Random, qc_rate: float, tally: Tally
    ) -> None:
        self.station_id = station_id
        self.habits = habits
        self.rng = rng
        self.qc_rate = qc_rate
        self.tally = tally
        self.depth_mm = 0.0
        self.prcp_missing_run = 0

    def days(self, days: Sequence[Day]) -> Iterator[tuple[str, list[Value], Era]]:
        """``(date, values in element order, era)`` for each day with at least one value."""
        eras = self.habits.eras
        era_index = 0
        for index, day in enumerate(days):
            date = day[0]
            while era_index + 1 < len(eras) and date >= eras[era_index + 1].start:
                era_index += 1
            era = eras[era_index]
            next_prcp = days[index + 1][3] if index + 1 < len(days) else MISSING
            values = self._values(day, era, next_prcp)
            if values:
                values.sort(key=lambda v: _RANK[v[0]])
                self._count(date, values, era)
                yield date, values, era

    def _values(self, day: Day, era: Era, next_prcp: int) -> list[Value]:
        date, tmax, tmin, prcp = day
        rng, habits = self.rng, self.habits
        month = int(date[4:6])
        values: list[Value] = []
        prcp_m = ""
        if "PRCP" in habits.core:
            if prcp != MISSING:
                if prcp == 0:
                    u = rng.random()
                    if u < habits.trace_share:
                        prcp_m = "T"
                    elif u < habits.trace_share + 0.01:
                        prcp_m = "P"
                elif rng.random() < 0.002:
                    prcp_m = rng.choice("BD")
                values.append(self._core(date, "PRCP", prcp, prcp_m))
            self._multiday(values, prcp, next_prcp)
        self._snow(values, month, tmax, prcp, prcp_m)
        if "TMAX" in habits.core:
            if tmax != MISSING:
                values.append(self._core(date, "TMAX", tmax, ""))
            if tmin != MISSING:
                values.append(self._core(date, "TMIN", tmin, ""))
            if MISSING not in (tmax, tmin):
                self._temperatures(values, tmax, tmin, era)
        if values:
            self._extras(values, month, prcp)
        return values

    def _core(self, date: str, element: str, value: int, m: str) -> Value:
        """A TMAX, TMIN or PRCP value, Q-flagged with probability ``qc_rate``."""
        if self.rng.random() >= self.qc_rate:
            return element, value, m, ""
        letter, implausible = _flag(self.rng, element)
        written = self.rng.choice(IMPLAUSIBLE[element]) if implausible else value
        self.tally.implausible += implausible
        self.tally.flagged.append(
            FlaggedValue(self.station_id, date, element, letter, written, value)
        )
        return element, written, m, letter

    def _multiday(self, values: list[Value], prcp: int, next_prcp: int) -> None:
        """At the last day of a run of missing PRCP, sometimes the run's total: DAPR days,
        MDPR amount (as a cooperative observer back from a weekend reports it)."""
        if prcp != MISSING:
            self.prcp_missing_run = 0
            return
        self.prcp_missing_run += 1
        run = self.prcp_missing_run
        if next_prcp != MISSING or run < 2 or not self.habits.multiday:
            return
        if self.rng.random() < 0.6:
            hundredths_inch = round(self.rng.expovariate(1 / (12 * run)))
            values += [("DAPR", run, "", ""), ("MDPR", round(hundredths_inch * 2.54), "", "")]

    def _snow(self, values: list[Value], month: int, tmax: int, prcp: int, prcp_m: str) -> None:
        """SNOW and SNWD: a snow depth carried from day to day (fresh snow settles, a warm day
        melts it), reported on most days of the station's season."""
        rng, habits = self.rng, self.habits
        cold = (tmax != MISSING and tmax <= 20) or (tmax == MISSING and month in (12, 1, 2))
        snow = _snowfall_mm(rng, prcp) if cold and prcp not in (0, MISSING) else 0
        self.depth_mm = self.depth_mm * 0.97 + snow * 0.7
        if tmax != MISSING and tmax > 0:
            self.depth_mm = max(0.0, self.depth_mm - tmax * 0.3)
        if habits.snow == "none" or (habits.snow == "winter" and month not in WINTER):
            return
        if rng.random() >= (0.95 if habits.snow == "all-year" else 0.9):
            return
        if prcp != MISSING:
            trace = prcp_m == "T" and cold
            values.append(("SNOW", snow, "T" if trace else "", ""))
        inches = round(self.depth_mm / 25.4)
        trace = inches == 0 and self.depth_mm > 3
        values.append(("SNWD", round(inches * 25.4), "T" if trace else "", ""))

    def _temperatures(self, values: list[Value], tmax: int, tmin: int, era: Era) -> None:
        """TOBS (the temperature at the observation time: near the minimum for a morning
        observer, near the maximum for an evening one) and TAVG (average of hourly values)."""
        rng, habits = self.rng, self.habits
        if habits.tobs and era.obs_time:
            morning = era.obs_time < "1200"
            share = rng.uniform(0.05, 0.35) if morning else rng.uniform(0.6, 0.95)
            values.append(("TOBS", tmin + round((tmax - tmin) * share), "", ""))
        if habits.tavg:
            values.append(("TAVG", (tmax + tmin) // 2 + round(rng.gauss(0, 8)), "H", ""))

    def _extras(self, values: list[Value], month: int, prcp: int) -> None:
        """Weather types, wind and pan evaporation, on days that have other values."""
        rng, habits = self.rng, self.habits
        summer = 5 <= month <= 9
        if habits.weather_types:
            wet = prcp not in (0, MISSING)
            if wet and summer and rng.random() < 0.35:
                values.append(("WT03", 1, "", ""))  # thunder
            if rng.random() < 0.04:
                values.append(("WT01", 1, "", ""))  # fog
            if wet and month in WINTER and rng.random() < 0.15:
                values.append((rng.choice(("WT04", "WT06")), 1, "", ""))  # ice pellets, glaze
            if wet and summer and rng.random() < 0.02:
                values.append(("WT05", 1, "", ""))  # hail
            if rng.random() < 0.01:
                values.append(("WT11", 1, "", ""))  # high winds
        if habits.wind and rng.random() < 0.95:
            average = max(0, round(rng.gauss(40, 15)))  # tenths of m/s
            values += [
                ("AWND", average, "", ""),
                ("WDF2", rng.randrange(10, 370, 10), "", ""),  # degrees
                ("WSF2", average + max(10, round(rng.gauss(45, 12))), "", ""),
            ]
        if habits.evaporation and 4 <= month <= 10 and rng.random() < 0.9:
            values += [
                ("EVAP", max(0, round(rng.gauss(55, 20))), "", ""),  # tenths of mm
                ("MNPN", round(rng.gauss(150, 40)), "", ""),  # tenths of degC
                ("MXPN", round(rng.gauss(260, 40)), "", ""),
                ("WDMV", max(0, round(rng.gauss(90, 35))), "", ""),  # km
            ]

    def _count(self, date: str, values: list[Value], era: Era) -> None:
        tally = self.tally
        tally.values += len(values)
        tally.s_flags[era.s_flag] += len(values)
        for element, _, m, _ in values:
            if element in CORE:
                tally.core_values[element] += 1
            else:
                tally.other_values[element] += 1
            if m:
                tally.m_flags[f"{element}:{m}"] += 1


# --- Layouts -------------------------------------------------------------------------------


def csv_lines(station_id: str, date: str, values: list[Value], era: Era) -> str:
    """One day's CSV lines, joined, each ended with LF."""
    s, time_ = era.s_flag, era.obs_time
    return "".join(
        f"{station_id},{date},{element},{value},{m},{q},{s},{time_}\n"
        for element, value, m, q in values
    )


def dly_month_lines(
    station_id: str, month: str, days: dict[str, dict[int, tuple[int, str, str, str]]]
) -> str:
    """One month's .dly lines (``month`` is YYYYMM; ``days`` maps element -> day -> value and
    flags), in element order, joined, each ended with LF."""
    lines = []
    for element in sorted(days, key=_RANK.__getitem__):
        by_day = days[element]
        slots = []
        for day in range(1, 32):
            given = by_day.get(day)
            if given is None:
                slots.append(f"{MISSING:5d}   ")
            else:
                value, m, q, s = given
                slots.append(f"{value:5d}{m or ' '}{q or ' '}{s or ' '}")
        lines.append(f"{station_id}{month}{element}{''.join(slots)}\n")
    return "".join(lines)


@contextlib.contextmanager
def _output(path: Path) -> Iterator[IO[str]]:
    """A text stream to ``path`` (gzip when it ends in ``.gz``), written under a ``.part``
    name and renamed when complete, removed if the writer fails."""
    part = path.with_name(path.name + ".part")
    try:
        with part.open("wb") as raw:
            if path.name.endswith(".gz"):
                # No name and time 0 in the header: equal content gives equal bytes. Level 6
                # (gzip's own default): 2.4x faster than Python's 9, files 6% larger.
                with (
                    gzip.GzipFile(
                        filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=6
                    ) as zipped,
                    io.TextIOWrapper(zipped, encoding="ascii", newline="\n") as text,
                ):
                    yield text
            else:
                with io.TextIOWrapper(raw, encoding="ascii", newline="\n") as text:
                    yield text
        part.replace(path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise


def _input(path: Path) -> IO[str]:
    """A text stream of ``path``, gunzipped when it ends in ``.gz``; line ends kept as they
    are, so a copy can reproduce them."""
    if path.name.endswith(".gz"):
        return gzip.open(path, "rt", encoding="ascii", newline="")
    return path.open(encoding="ascii", newline="")


# --- Manifest ------------------------------------------------------------------------------


@dataclass
class Manifest:
    """What a generator wrote and the noise in it: enough for a test to know the answer."""

    layout: str
    seed: int
    qc_rate: float
    source: str
    stations: int
    files: int
    header_files: int
    lines: int  # data lines: CSV lines without the header, or .dly month lines
    values: int  # values written (a CSV line, a .dly day slot that is not -9999)
    size_bytes: int
    core_values: dict[str, int]  # per element, Q-flagged values included
    other_values: int
    other_by_element: dict[str, int]
    q_flags: dict[str, int]  # Q-flagged core values per letter
    implausible_flagged: int  # of those, values outside any plausible range
    m_flags: dict[str, int]  # "ELEMENT:FLAG" -> values
    s_flags: dict[str, int]
    flagged: list[FlaggedValue]  # by station, date, element

    @classmethod
    def build(
        cls, tally: Tally, *, layout: str, seed: int, qc_rate: float, source: str, **counts: int
    ) -> Manifest:
        return cls(
            layout=layout,
            seed=seed,
            qc_rate=qc_rate,
            source=source,
            stations=counts["stations"],
            files=counts["files"],
            header_files=counts["header_files"],
            lines=counts["lines"],
            values=tally.values,
            size_bytes=counts["size_bytes"],
            core_values=dict(sorted(tally.core_values.items())),
            other_values=sum(tally.other_values.values()),
            other_by_element=dict(sorted(tally.other_values.items())),
            q_flags=dict(sorted(Counter(f.flag for f in tally.flagged).items())),
            implausible_flagged=tally.implausible,
            m_flags=dict(sorted(tally.m_flags.items())),
            s_flags=dict(sorted(tally.s_flags.items())),
            flagged=sorted(tally.flagged, key=lambda f: (f.station_id, f.date, f.element)),
        )

    def flagged_keys(self) -> set[tuple[str, str, str]]:
        """``(station, date, element)`` of every Q-flagged value."""
        return {(f.station_id, f.date, f.element) for f in self.flagged}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text())
        data["flagged"] = [FlaggedValue(**f) for f in data["flagged"]]
        return cls(**data)


# --- from-wx -------------------------------------------------------------------------------


def read_wx(path: Path) -> list[Day]:
    """A wx_data station file: ``YYYYMMDD<TAB>tmax<TAB>tmin<TAB>prcp`` per line."""
    days = []
    with path.open() as lines:
        for line in lines:
            date, tmax, tmin, prcp = line.split("\t")
            days.append((date, int(tmax), int(tmin), int(prcp)))
    return days


def _write_csv(path: Path, station: _Station, days: Sequence[Day], header: bool) -> int:
    """A by-station CSV file; returns its data lines."""
    lines = 0
    with _output(path) as out:
        if header:
            out.write(CSV_HEADER + "\n")
        for date, values, era in station.days(days):
            out.write(csv_lines(station.station_id, date, values, era))
            lines += len(values)
    return lines


def _write_dly(path: Path, station: _Station, days: Sequence[Day]) -> int:
    """A .dly file, a month at a time; returns its lines (one per month and element)."""
    lines = 0
    month = ""
    by_element: dict[str, dict[int, tuple[int, str, str, str]]] = {}
    with _output(path) as out:
        for date, values, era in station.days(days):
            if date[:6] != month:
                out.write(dly_month_lines(station.station_id, month, by_element))
                lines += len(by_element)
                month, by_element = date[:6], {}
            day = int(date[6:8])
            for element, value, m, q in values:
                by_element.setdefault(element, {})[day] = (value, m, q, era.s_flag)
        out.write(dly_month_lines(station.station_id, month, by_element))
        lines += len(by_element)
    return lines


def write_station(
    path: Path, station_id: str, days: Sequence[Day], *, seed: int, qc_rate: float, tally: Tally
) -> tuple[int, bool]:
    """Write ``days`` of ``station_id`` as its by-station file ``path`` (``.csv``, ``.csv.gz``
    or ``.dly``) with the noise of the module docstring; returns (lines, header line written).
    The values are a function of (seed, station id, days): any caller gets the same file."""
    habits = draw_habits(station_id, seed, days[0][0], days[-1][0])
    rng = random.Random(f"{seed}:{station_id}")  # noqa: S311  (test data, not secrets)
    station = _Station(station_id, habits, rng, qc_rate, tally)
    if path.name.endswith(".dly"):
        return _write_dly(path, station, days), False
    return _write_csv(path, station, days, habits.header), habits.header


def wx_to_ghcn(
    src_folder: Path, dest_folder: Path, *, layout: str, seed: int, qc_rate: float = 0.001
) -> Manifest:
    """Write each wx_data station file of ``src_folder`` as the same station's GHCN-Daily file
    in ``dest_folder``: ``ID.csv``, ``ID.csv.gz`` or ``ID.dly`` for ``layout`` csv, csv.gz or
    dly, with the noise described in the module docstring, and ``manifest.json`` beside them.

    The unflagged TMAX, TMIN and PRCP values are exactly the wx_data values, so the expected
    statistics are those of wx_data with the manifest's flagged values made missing.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    if not 0 <= qc_rate <= 1:
        raise ValueError(f"qc_rate {qc_rate}: expected a share between 0 and 1")
    sources = sorted(src_folder.glob("*.txt"))
    if not sources:
        raise ValueError(f"{src_folder}: no wx_data station files (*.txt)")
    dest_folder.mkdir(parents=True, exist_ok=True)
    tally = Tally()
    files = header_files = lines = size_bytes = 0
    for source in sources:
        days = read_wx(source)
        if not days:
            continue
        path = dest_folder / f"{source.stem}.{layout}"
        written, header = write_station(
            path, source.stem, days, seed=seed, qc_rate=qc_rate, tally=tally
        )
        lines += written
        header_files += header
        files += 1
        size_bytes += path.stat().st_size
    manifest = Manifest.build(
        tally,
        layout=layout,
        seed=seed,
        qc_rate=qc_rate,
        source=str(src_folder),
        stations=files,
        files=files,
        header_files=header_files,
        lines=lines,
        size_bytes=size_bytes,
    )
    manifest.write(dest_folder / MANIFEST)
    return manifest


# --- by-year -------------------------------------------------------------------------------


def _ordinal(date: str) -> int:
    return dt.date(int(date[:4]), int(date[4:6]), int(date[6:8])).toordinal()


def _date_string(ordinal: int) -> str:
    return dt.date.fromordinal(ordinal).strftime("%Y%m%d")


def station_ids(count: int, seed: int) -> list[str]:
    """``count`` distinct GHCN-shaped ids: cooperative ``USC00`` + state code + 4 digits, and
    CoCoRaHS ``US1`` + state + county letters + 4 digits. A smaller count is a prefix of a
    larger one, so by-year files of different sizes share their first stations."""
    rng = random.Random(f"{seed}:station-ids")  # noqa: S311  (test data, not secrets)
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        if rng.random() < COCORAHS_SHARE:
            county = "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=2))
            station_id = f"US1{rng.choice(COCORAHS_STATES)}{county}{rng.randrange(1, 10000):04d}"
        else:
            station_id = f"USC00{rng.choice(COOP_STATES)}{rng.randrange(10000):04d}"
        if station_id not in seen:
            seen.add(station_id)
            ids.append(station_id)
    return ids


def _tenths_c(fahrenheit: int) -> int:
    """A whole-degree Fahrenheit reading in tenths of degC, as NOAA converts US readings."""
    return round((fahrenheit - 32) * 50 / 9)


def synthetic_days(station_id: str, seed: int, year: int) -> list[Day]:
    """One year of plausible Midwest weather for a station: a seasonal cycle with a station
    offset and day-to-day persistence, whole degrees F and hundredths of an inch converted as
    NOAA does, rain following rain. A cooperative station misses a few values (temperatures
    or precipitation, never both on one day); a CoCoRaHS station reports precipitation only,
    every day. So every station has at least one TMAX/TMIN/PRCP value on every day."""
    rng = random.Random(f"{seed}:{year}:{station_id}:weather")  # noqa: S311  (test data)
    coop = not station_id.startswith("US1")
    offset, range_offset = rng.gauss(0, 25), rng.gauss(0, 15)
    wet_bias = rng.uniform(0.8, 1.2)
    anomaly, wet = rng.gauss(0, 1), False
    missing_kind, missing_left = "", 0
    days: list[Day] = []
    first = dt.date(year, 1, 1).toordinal()
    for doy in range(1, (366 if calendar.isleap(year) else 365) + 1):
        season = math.cos(2 * math.pi * (doy - 200) / 365.25)
        anomaly = 0.7 * anomaly + 0.714 * rng.gauss(0, 1)
        # Tenths of degC, within Illinois' records (47.2 and -41.1 degC): a synthetic value
        # outside wxhub's plausibility limits would be rejected, and it is not what a real
        # unflagged value looks like.
        high = min(470, max(-380, 165 + 145 * season + offset + 55 * anomaly))
        low = high - max(0.0, 115 + 10 * season + range_offset + 30 * rng.gauss(0, 1))
        tmax = _tenths_c(round(high * 0.18 + 32))
        tmin = min(tmax, _tenths_c(round(low * 0.18 + 32)))
        wet_season = math.cos(2 * math.pi * (doy - 150) / 365.25)
        wet = rng.random() < (0.45 if wet else 0.2 + 0.05 * wet_season) * wet_bias
        prcp = round(max(1, round(rng.expovariate(1 / 28))) * 2.54) if wet else 0
        if not coop:
            tmax = tmin = MISSING
        else:
            if missing_left == 0 and rng.random() < 0.004:
                missing_kind = rng.choice(("temperatures", "tmax", "tmin", "prcp"))
                missing_left = rng.randint(1, 10)
            if missing_left:
                missing_left -= 1
                tmax = MISSING if missing_kind in ("temperatures", "tmax") else tmax
                tmin = MISSING if missing_kind in ("temperatures", "tmin") else tmin
                prcp = MISSING if missing_kind == "prcp" else prcp
        days.append((_date_string(first + doy - 1), tmax, tmin, prcp))
    return days


def _check_csv_path(path: Path, gz: bool) -> None:
    name = path.name
    if not (name.endswith(".csv.gz") if gz else name.endswith(".csv")):
        raise ValueError(f"{path}: expected a name ending in {'.csv.gz' if gz else '.csv'}")


def synthetic_by_year(
    path: Path,
    *,
    year: int,
    stations: int,
    seed: int,
    gz: bool = False,
    order: str = "shuffled",
    qc_rate: float = 0.001,
    header: bool = False,
    ids: Sequence[str] | None = None,
    last_day: int | None = None,
) -> int:
    """Write one by-year CSV of ``stations`` synthetic stations (``YYYY.csv``, or
    ``.csv.gz`` with ``gz``), every station on every day of ``year``, with the noise of the
    module docstring; returns the number of lines in the file. Writes
    ``<name>.manifest.json`` beside it.

    ``ids``: these stations instead of ``stations`` drawn ones (a benchmark's own stations);
    ``last_day``: the year so far, days 1 to ``last_day`` only, as NOAA's file of the current
    year is on that night (the file of day N + 1 repeats day N's file and adds one day).

    ``order``: ``shuffled`` (NOAA's by-year files promise no order), ``station`` (station
    by station, each by date) or ``date`` (day by day). Memory stays bounded whatever the
    size: a station is generated at a time, and the shuffled and date orders go through
    temporary bucket files of at most about 200,000 lines each (a line's bucket drawn at
    random, then each bucket shuffled: a uniform shuffle of the whole file; or a bucket per
    run of days, then each bucket sorted by date).
    """
    if order not in ORDERS:
        raise ValueError(f"order {order!r}: expected one of {', '.join(ORDERS)}")
    if (len(ids) if ids is not None else stations) < 1:
        raise ValueError(f"stations {stations}: expected at least 1")
    _check_csv_path(path, gz)
    path.parent.mkdir(parents=True, exist_ok=True)
    days_in_year = 366 if calendar.isleap(year) else 365
    if last_day is not None and not 1 <= last_day <= days_in_year:
        raise ValueError(f"last_day {last_day}: expected 1 to {days_in_year} for {year}")
    chosen = sorted(ids) if ids is not None else sorted(station_ids(stations, seed))
    stations = len(chosen)
    expected_lines = stations * (last_day or days_in_year) * 5  # ~2.4 core, ~2.4 other a day
    tally = Tally()
    with _output(path) as out:
        if header:
            out.write(CSV_HEADER + "\n")
        stream = _by_year_lines(year, chosen, seed, qc_rate, tally, last_day=last_day)
        if order == "station":
            for _, lines in stream:
                out.write(lines)
        else:
            _write_through_buckets(
                out,
                stream,
                scratch_parent=path.parent,
                order=order,
                year=year,
                seed=seed,
                expected_lines=expected_lines,
            )
    manifest = Manifest.build(
        tally,
        layout="by-year.csv.gz" if gz else "by-year.csv",
        seed=seed,
        qc_rate=qc_rate,
        source=f"synthetic {year}, {order}",
        stations=stations,
        files=1,
        header_files=int(header),
        lines=tally.values,
        size_bytes=path.stat().st_size,
    )
    manifest.write(path.with_name(path.name + ".manifest.json"))
    return tally.values + int(header)


def _by_year_lines(
    year: int,
    ids: Sequence[str],
    seed: int,
    qc_rate: float,
    tally: Tally,
    *,
    last_day: int | None = None,
) -> Iterator[tuple[int, str]]:
    """``(day of the year, that day's CSV lines)`` for each station of ``ids`` in turn."""
    for station_id in ids:
        days = synthetic_days(station_id, seed, year)[:last_day]
        habits = draw_habits(station_id, seed, days[0][0], days[-1][0])
        rng = random.Random(f"{seed}:{year}:{station_id}")  # noqa: S311  (test data)
        station = _Station(station_id, habits, rng, qc_rate, tally)
        doy = {day[0]: number for number, day in enumerate(days, start=1)}
        for date, values, era in station.days(days):
            yield doy[date], csv_lines(station_id, date, values, era)


def _write_through_buckets(
    out: IO[str],
    stream: Iterator[tuple[int, str]],
    *,
    scratch_parent: Path,
    order: str,
    year: int,
    seed: int,
    expected_lines: int,
) -> None:
    """Write ``stream``'s lines to ``out`` shuffled or by date, holding one bucket at a time.

    Shuffled: each line goes to a bucket drawn at random, then each bucket is shuffled: a
    uniform shuffle of the whole file. By date: a bucket per run of days, each sorted by date
    (a stable sort, so stations keep their order within a day and elements theirs).
    """
    rng = random.Random(f"{seed}:{year}:{order}")  # noqa: S311  (test data, not secrets)
    days_in_year = 366 if calendar.isleap(year) else 365
    count = max(1, math.ceil(expected_lines / BUCKET_LINES))
    days_per_bucket = max(1, days_in_year // count)
    if order == "date":
        count = math.ceil(days_in_year / days_per_bucket)
    with tempfile.TemporaryDirectory(dir=scratch_parent, prefix=".gen-ghcn-") as scratch:
        files = [Path(scratch, f"{i}.csv") for i in range(count)]
        with contextlib.ExitStack() as stack:
            buckets = [stack.enter_context(f.open("w", newline="\n")) for f in files]
            pick = rng.random
            for doy, lines in stream:
                if order == "date":
                    buckets[(doy - 1) // days_per_bucket].write(lines)
                    continue
                for line in lines.splitlines(keepends=True):
                    buckets[int(pick() * count)].write(line)
        for file in files:
            bucket = file.read_text().splitlines(keepends=True)
            file.unlink()
            if order == "date":
                bucket.sort(key=lambda line: line[12:20])
            else:
                rng.shuffle(bucket)
            out.write("".join(bucket))


# --- change --------------------------------------------------------------------------------


def _changeable(line: str) -> list[str] | None:
    """The fields of a line whose value may change: TMAX, TMIN or PRCP with no Q flag (a
    correction of a flagged value would change what is dropped) and no M flag (a trace
    stays 0)."""
    fields = line.rstrip("\r\n").split(",")
    if len(fields) != 8 or fields[2] not in CORE or fields[4] or fields[5]:
        return None
    if not fields[3].lstrip("-").isdigit():
        return None
    return fields


def _changed_value(rng: random.Random, element: str, old: int) -> int:
    """A plausible value different from ``old``: a temperature 0.5 to 3 degC away (within
    -60..55 degC), an amount of precipitation where there was none, or a different one."""
    if element == "PRCP":
        if old == 0:
            return round(rng.randint(1, 60) * 2.54)
        return max(0, old + rng.choice((-1, 1)) * rng.randint(1, max(3, old // 2)))
    delta = rng.choice((-1, 1)) * rng.randint(5, 30)
    return old + delta if -600 <= old + delta <= 550 else old - delta


def changed_copy(src: Path, dst: Path, *, changes: int = 100, seed: int) -> list[Change]:
    """Copy the CSV file ``src`` (plain or .gz, by-year or by-station) to ``dst`` with
    exactly ``changes`` TMAX/TMIN/PRCP values changed, as a NOAA correction would: unflagged
    values (no Q or M flag), each new value plausible and different. Every other byte is
    copied as it is. Two streaming passes (count, then copy), so memory does not grow with
    the file. Returns ``(station, date, element, old, new)`` in file order."""
    for path in (src, dst):
        if not (path.name.endswith(".csv") or path.name.endswith(".csv.gz")):
            raise ValueError(f"{path}: expected a CSV file (.csv or .csv.gz)")
    with _input(src) as lines:
        eligible = sum(_changeable(line) is not None for line in lines)
    if not 0 <= changes <= eligible:
        raise ValueError(f"changes {changes}: {src} has {eligible} values that can change")
    rng = random.Random(f"{seed}:changes")  # noqa: S311  (test data, not secrets)
    chosen = set(rng.sample(range(eligible), changes))
    made: list[Change] = []
    index = 0
    dst.parent.mkdir(parents=True, exist_ok=True)
    with _input(src) as lines, _output(dst) as out:
        for line in lines:
            fields = _changeable(line)
            if fields is not None:
                if index in chosen:
                    station_id, date, element, old = fields[0], fields[1], fields[2], fields[3]
                    new = _changed_value(rng, element, int(old))
                    fields[3] = str(new)
                    ending = line[len(line.rstrip("\r\n")) :]
                    line = ",".join(fields) + ending  # noqa: PLW2901  (the changed line)
                    made.append((station_id, date, element, int(old), new))
                index += 1
            out.write(line)
    return made


# --- Command line ---------------------------------------------------------------------------


def _summary(path: Path, lines: int, started: float) -> str:
    elapsed = time.perf_counter() - started
    size = path.stat().st_size if path.is_file() else 0
    return f"{lines:,} lines, {size / 1e6:,.1f} MB, {elapsed:.1f} s"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    from_wx = commands.add_parser("from-wx", help="wx_data station files -> GHCN by-station")
    from_wx.add_argument("src", type=Path, help="folder of wx_data files (ID.txt)")
    from_wx.add_argument("dest", type=Path, help="folder to write (created)")
    from_wx.add_argument("--layout", choices=LAYOUTS, required=True)
    by_year = commands.add_parser("by-year", help="one synthetic by-year CSV")
    by_year.add_argument("dest", type=Path, help="YYYY.csv or YYYY.csv.gz")
    by_year.add_argument("--year", type=int, default=2024)
    by_year.add_argument("--stations", type=int, default=5000)
    by_year.add_argument("--order", choices=ORDERS, default="shuffled")
    by_year.add_argument("--header", action="store_true", help="start with the header line")
    change = commands.add_parser("change", help="a copy with N values changed")
    change.add_argument("src", type=Path)
    change.add_argument("dst", type=Path)
    change.add_argument("--changes", type=int, default=100)
    for command in (from_wx, by_year, change):
        command.add_argument("--seed", type=int, default=1)
    for command in (from_wx, by_year):
        command.add_argument("--qc-rate", type=float, default=0.001)
    options = parser.parse_args(argv)

    started = time.perf_counter()
    if options.command == "from-wx":
        manifest = wx_to_ghcn(
            options.src,
            options.dest,
            layout=options.layout,
            seed=options.seed,
            qc_rate=options.qc_rate,
        )
        print(
            f"{manifest.files} files, {manifest.lines:,} lines, {manifest.values:,} values "
            f"({manifest.other_values:,} other elements, {len(manifest.flagged):,} Q-flagged), "
            f"{manifest.size_bytes / 1e6:,.1f} MB in {options.dest}, "
            f"{time.perf_counter() - started:.1f} s",
            file=sys.stderr,
        )
    elif options.command == "by-year":
        lines = synthetic_by_year(
            options.dest,
            year=options.year,
            stations=options.stations,
            seed=options.seed,
            gz=options.dest.name.endswith(".gz"),
            order=options.order,
            qc_rate=options.qc_rate,
            header=options.header,
        )
        print(f"{options.dest}: {_summary(options.dest, lines, started)}", file=sys.stderr)
    else:
        made = changed_copy(options.src, options.dst, changes=options.changes, seed=options.seed)
        record = options.dst.with_name(options.dst.name + ".changes.json")
        record.write_text("[\n" + ",\n".join(json.dumps(c) for c in made) + "\n]\n")
        print(f"{options.dst}: {len(made)} values changed, listed in {record}", file=sys.stderr)


if __name__ == "__main__":
    main()
