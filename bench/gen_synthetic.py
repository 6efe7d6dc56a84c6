"""Write synthetic NOAA station files with the statistical shape of data/wx_data, for the 10x
scale benchmark (bench/bench_scale.py).

The real files are read once to learn a small profile; every synthetic station is then drawn
from it, so a benchmark on 10x the data sees the same kind of rows the job sees in production:

- dates: a span (first and last month) taken from a real station, with whole months missing
  (the real gaps always start on the 1st and end on a month's last day), as many gaps as a real
  station has and of the real lengths;
- temperatures: per day of the year, the real mean and spread of the maximum and of the daily
  range (max - min, never negative here, so max >= min), a per-station offset taken from a real
  station (the data runs from Nebraska to Ohio), and day-to-day persistence (an AR(1) anomaly
  with the real lag-1 correlation);
- precipitation: wet or dry by a per-month two-state Markov chain (rain follows rain), the
  amount of a wet day drawn from the real per-month distribution of amounts (many small, a few
  very large);
- missing values (-9999): episodes of the real patterns (which fields are missing together)
  and lengths, started as often as in the real files.

Output is deterministic for a seed whatever the number of processes: each station has its own
random generator seeded by (seed, station number). Files are written line by line through a
buffer (constant memory), to a temporary name renamed when complete. Station ids are ``SYN``
plus 8 digits: 11 characters like the real GHCN ids (``USC00110072``), and no real id starts
with ``SYN``.

    python bench/gen_synthetic.py /tmp/wxhub-syn --factor 10 [--seed 1] [--jobs 2]
    python bench/gen_synthetic.py /tmp/wxhub-syn --stations 20 --compare
"""

from __future__ import annotations

import argparse
import calendar
import datetime as dt
import json
import math
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REAL_DATA = REPO / "data" / "wx_data"
MISSING = -9999
PREFIX = "SYN"
ID_DIGITS = 8  # SYN + 8 digits = 11 characters, like USC00110072
DAYS_IN_LEAP_YEAR = 366
QUANTILES = 1000  # points of each month's distribution of wet-day amounts
SMOOTHING_DAYS = 15  # window of the circular moving average of the per-day-of-year figures
MANIFEST = "manifest.json"  # not *.txt, so `wxhub ingest FOLDER` ignores it


def day_of_year_index(month: int, day: int) -> int:
    """0..365 on a leap-year calendar, so 29 February has its own slot and 1 March is the same
    slot in every year."""
    return dt.date(2000, month, day).timetuple().tm_yday - 1


@dataclass
class Profile:
    """What the generator knows of the real files; small, picklable, JSON-able."""

    spans: list[tuple[int, int]]  # per real station: first and last month (year * 12 + m - 1)
    gap_counts: list[int]  # per real station: the number of gaps (runs of missing months)
    gap_months: list[int]  # every real gap's length in months
    station_offsets: list[tuple[float, float]]  # per real station: tmax and tmin offset, tenths
    tmax_mean: list[float]  # per day-of-year slot, tenths of a degree C
    tmax_sd: list[float]
    range_mean: list[float]  # max - min
    range_sd: list[float]
    tmax_lag1: float  # correlation of one day's tmax anomaly with the next day's
    wet_after_dry: list[float]  # per month: P(wet day | previous day dry)
    wet_after_wet: list[float]
    wet_amounts: list[list[int]]  # per month: QUANTILES points of the wet-day amounts, tenths mm
    episode_start: float  # P(a missing episode starts | a complete day)
    episodes: list[tuple[int, int]]  # every real episode: (mask of missing fields, days)


class _Moments:
    """Count, sum and sum of squares, per day-of-year slot."""

    def __init__(self) -> None:
        self.n = [0] * DAYS_IN_LEAP_YEAR
        self.total = [0.0] * DAYS_IN_LEAP_YEAR
        self.squares = [0.0] * DAYS_IN_LEAP_YEAR

    def add(self, slot: int, value: int) -> None:
        self.n[slot] += 1
        self.total[slot] += value
        self.squares[slot] += value * value


def _smooth(values: list[float]) -> list[float]:
    """Circular moving average: a day of the year has about 5,000 real values, so the raw
    means still wobble from one day to the next; the climate does not."""
    half = SMOOTHING_DAYS // 2
    size = len(values)
    return [
        sum(values[(i + k) % size] for k in range(-half, half + 1)) / SMOOTHING_DAYS
        for i in range(size)
    ]


def _mean_sd(stations: list[_Moments], offsets: list[float]) -> tuple[list[float], list[float]]:
    """Per slot: the mean over all stations, and the spread once each station's own offset
    from that mean is removed (the spread of the weather, not of the geography)."""
    mean, sd = [], []
    for slot in range(DAYS_IN_LEAP_YEAR):
        n = sum(s.n[slot] for s in stations)
        mean.append(sum(s.total[slot] for s in stations) / n)
    for slot in range(DAYS_IN_LEAP_YEAR):
        n, squares = 0, 0.0
        for station, offset in zip(stations, offsets, strict=True):
            centre = mean[slot] + offset
            n += station.n[slot]
            squares += (
                station.squares[slot]
                - 2 * centre * station.total[slot]
                + station.n[slot] * centre * centre
            )
        sd.append(math.sqrt(max(squares, 0.0) / n))
    return mean, sd


def _offset(station: _Moments, mean: list[float]) -> float:
    """A station's average departure from the all-station mean of the same day of year (so a
    station with a winter gap is not taken for a warm one)."""
    n = sum(station.n)
    if n == 0:
        return 0.0
    return sum(station.total[s] - station.n[s] * mean[s] for s in range(DAYS_IN_LEAP_YEAR)) / n


def _quantiles(values: list[int]) -> list[int]:
    values.sort()
    last = len(values) - 1
    return [values[round(i * last / (QUANTILES - 1))] for i in range(QUANTILES)]


_SLOTS = {
    (m, d): day_of_year_index(m, d)
    for m in range(1, 13)
    for d in range(1, 32)
    if d <= calendar.monthrange(2000, m)[1]
}


class _Learner:
    """Accumulates the profile's raw counts, one station file at a time."""

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []
        self.gap_counts: list[int] = []
        self.gap_months: list[int] = []
        self.tmax: list[_Moments] = []
        self.tmin: list[_Moments] = []
        self.range: list[_Moments] = []
        self.diff_squares, self.diff_n = 0.0, 0
        # Per month: dry->dry, dry->wet, wet->dry, wet->wet.
        self.transitions = [[0, 0, 0, 0] for _ in range(12)]
        self.amounts: list[list[int]] = [[] for _ in range(12)]
        self.episodes: list[tuple[int, int]] = []
        self.complete_days = 0

    def add_file(self, path: Path) -> None:
        """One station: its months and gaps, then each day's values."""
        tmax_m, tmin_m, range_m = _Moments(), _Moments(), _Moments()
        self.tmax.append(tmax_m)
        self.tmin.append(tmin_m)
        self.range.append(range_m)
        previous_month: int | None = None
        previous_tmax: int | None = None
        previous_wet: bool | None = None
        first_month = last_month = gaps = 0
        mask = run = 0
        with path.open() as lines:
            for line in lines:
                date, *raw = line.split("\t")
                tmax, tmin, prcp = (int(v) for v in raw)
                month = int(date[4:6])
                month_index = int(date[:4]) * 12 + month - 1
                if previous_month is None:
                    first_month = month_index
                elif month_index > previous_month + 1:
                    gaps += 1
                    self.gap_months.append(month_index - previous_month - 1)
                    previous_tmax = previous_wet = None  # no persistence across a gap
                previous_month = last_month = month_index
                slot = _SLOTS[month, int(date[6:8])]

                if tmax != MISSING:
                    tmax_m.add(slot, tmax)
                    if previous_tmax is not None:
                        self.diff_squares += (tmax - previous_tmax) ** 2
                        self.diff_n += 1
                    if tmin != MISSING:
                        range_m.add(slot, tmax - tmin)
                if tmin != MISSING:
                    tmin_m.add(slot, tmin)
                previous_tmax = None if tmax == MISSING else tmax
                previous_wet = self._add_precipitation(month, prcp, previous_wet)

                day_mask = (tmax == MISSING) | (tmin == MISSING) << 1 | (prcp == MISSING) << 2
                if day_mask != mask and run:
                    self.episodes.append((mask, run))
                    run = 0
                mask = day_mask
                run += bool(day_mask)
                self.complete_days += not day_mask
        if run:
            self.episodes.append((mask, run))
        self.spans.append((first_month, last_month))
        self.gap_counts.append(gaps)

    def _add_precipitation(self, month: int, prcp: int, previous_wet: bool | None) -> bool | None:
        """Count the wet/dry transition and the amount; returns today's state (None: unknown)."""
        if prcp == MISSING:
            return None
        wet = prcp > 0
        if previous_wet is not None:
            self.transitions[month - 1][2 * previous_wet + wet] += 1
        if wet:
            self.amounts[month - 1].append(prcp)
        return wet

    def profile(self) -> Profile:
        """The profile of every file added."""
        # Means first (offsets zero), then each station's offset, then the spreads around it.
        zero = [0.0] * len(self.spans)
        tmax_mean, _ = _mean_sd(self.tmax, zero)
        tmin_mean, _ = _mean_sd(self.tmin, zero)
        range_mean, _ = _mean_sd(self.range, zero)
        tmax_offsets = [_offset(s, tmax_mean) for s in self.tmax]
        tmin_offsets = [_offset(s, tmin_mean) for s in self.tmin]
        range_offsets = [t - n for t, n in zip(tmax_offsets, tmin_offsets, strict=True)]
        _, tmax_sd = _mean_sd(self.tmax, tmax_offsets)
        _, range_sd = _mean_sd(self.range, range_offsets)
        # A stationary AR(1) series with spread s and lag-1 correlation r has
        # Var(x[t] - x[t-1]) = 2 s^2 (1 - r); a day's seasonal drift (~0.3 degC) is noise here.
        mean_variance = sum(s * s for s in tmax_sd) / len(tmax_sd)
        lag1 = min(max(1 - self.diff_squares / max(self.diff_n, 1) / (2 * mean_variance), 0), 0.99)
        return Profile(
            spans=self.spans,
            gap_counts=self.gap_counts,
            gap_months=self.gap_months or [0],
            station_offsets=list(zip(tmax_offsets, tmin_offsets, strict=True)),
            tmax_mean=_smooth(tmax_mean),
            tmax_sd=_smooth(tmax_sd),
            range_mean=_smooth(range_mean),
            range_sd=_smooth(range_sd),
            tmax_lag1=lag1,
            wet_after_dry=[t[1] / max(t[0] + t[1], 1) for t in self.transitions],
            wet_after_wet=[t[3] / max(t[2] + t[3], 1) for t in self.transitions],
            wet_amounts=[_quantiles(a) if a else [1] * QUANTILES for a in self.amounts],
            episode_start=len(self.episodes) / max(self.complete_days, 1),
            episodes=self.episodes or [(0, 0)],
        )


def real_files(folder: Path = REAL_DATA) -> list[Path]:
    """The station files of ``folder``, in name order."""
    return sorted(folder.glob("*.txt"))


def learn(paths: list[Path]) -> Profile:
    """Read each station file once and return their profile."""
    if not paths:
        raise SystemExit("no station files to learn from")
    learner = _Learner()
    for path in paths:
        learner.add_file(path)
    return learner.profile()


def station_id(number: int) -> str:
    """``SYN`` + 8 digits: never a real GHCN id (those start with a country code)."""
    if not 0 <= number < 10**ID_DIGITS:
        raise ValueError(f"station number {number} does not fit in {ID_DIGITS} digits")
    return f"{PREFIX}{number:0{ID_DIGITS}d}"


def _months(rng: random.Random, profile: Profile) -> list[int]:
    """The months (year * 12 + m - 1) a synthetic station has, in order, gaps removed."""
    first, last = rng.choice(profile.spans)
    missing: set[int] = set()
    for _ in range(rng.choice(profile.gap_counts)):
        length = rng.choice(profile.gap_months)
        # A gap never takes the first or last month, as in the real files.
        latest_start = last - length
        if length and latest_start > first:
            start = rng.randint(first + 1, latest_start)
            missing.update(range(start, start + length))
    return [m for m in range(first, last + 1) if m not in missing]


def _amount(rng: random.Random, points: list[int]) -> int:
    """A wet day's amount: the month's real distribution, interpolated between its points."""
    position = rng.random() * (len(points) - 1)
    low = int(position)
    high = min(low + 1, len(points) - 1)
    value = points[low] + (points[high] - points[low]) * (position - low)
    return max(1, round(value))


def station_lines(number: int, seed: int, profile: Profile) -> Iterator[str]:
    """The lines of synthetic station ``number`` for ``seed``, one month at a time (a month's
    lines joined), in date order, exactly as NOAA writes them."""
    # A str seed is hashed with SHA-512: the same stream on every platform and Python 3.x.
    rng = random.Random(f"{seed}:{number}")  # noqa: S311  (test data, not secrets)
    gauss, uniform = rng.gauss, rng.random
    tmax_offset, tmin_offset = rng.choice(profile.station_offsets)
    range_offset = tmax_offset - tmin_offset
    lag1 = profile.tmax_lag1
    innovation = math.sqrt(1 - lag1 * lag1)
    anomaly = gauss(0.0, 1.0)
    wet = False
    episode_mask, episode_left = 0, 0
    previous_month = None
    for month_index in _months(rng, profile):
        year, month0 = divmod(month_index, 12)
        if previous_month is not None and month_index != previous_month + 1:
            anomaly, wet = gauss(0.0, 1.0), False  # a gap: the weather forgets
        previous_month = month_index
        days = calendar.monthrange(year, month0 + 1)[1]
        first_slot = day_of_year_index(month0 + 1, 1)
        after_dry, after_wet = profile.wet_after_dry[month0], profile.wet_after_wet[month0]
        amounts = profile.wet_amounts[month0]
        prefix = f"{year:04d}{month0 + 1:02d}"
        lines = []
        for day in range(1, days + 1):
            slot = first_slot + day - 1
            anomaly = lag1 * anomaly + innovation * gauss(0.0, 1.0)
            tmax = round(profile.tmax_mean[slot] + tmax_offset + profile.tmax_sd[slot] * anomaly)
            spread = profile.range_mean[slot] + range_offset + profile.range_sd[slot] * gauss()
            tmin = tmax - max(0, round(spread))
            wet = uniform() < (after_wet if wet else after_dry)
            prcp = _amount(rng, amounts) if wet else 0

            if episode_left == 0 and uniform() < profile.episode_start:
                episode_mask, episode_left = rng.choice(profile.episodes)
            if episode_left:
                episode_left -= 1
                if episode_mask & 1:
                    tmax = MISSING
                if episode_mask & 2:
                    tmin = MISSING
                if episode_mask & 4:
                    prcp = MISSING
            lines.append(f"{prefix}{day:02d}\t{tmax:5d}\t{tmin:5d}\t{prcp:5d}\n")
        yield "".join(lines)


def write_station(folder: Path, number: int, seed: int, profile: Profile) -> int:
    """Write one station's file (complete or not at all); returns its number of lines."""
    path = folder / f"{station_id(number)}.txt"
    partial = path.with_suffix(".part")
    rows = 0
    with partial.open("w", buffering=1 << 16) as out:
        for month in station_lines(number, seed, profile):
            out.write(month)
            rows += month.count("\n")
    partial.rename(path)
    return rows


_PROFILE: Profile | None = None


def _init_worker(profile: Profile) -> None:
    global _PROFILE  # noqa: PLW0603  (sent once to each worker process, not once per file)
    _PROFILE = profile


def _write_in_worker(task: tuple[Path, int, int]) -> int:
    assert _PROFILE is not None
    folder, number, seed = task
    return write_station(folder, number, seed, _PROFILE)


def generate(
    folder: Path, stations: int, seed: int, profile: Profile, *, jobs: int = 1, first: int = 1
) -> int:
    """Write stations ``first`` .. ``first + stations - 1`` into ``folder``; returns the rows.

    ``jobs`` > 1 writes files in that many processes; the files are the same either way.
    """
    folder.mkdir(parents=True, exist_ok=True)
    tasks = [(folder, number, seed) for number in range(first, first + stations)]
    if jobs <= 1:
        return sum(write_station(f, n, s, profile) for f, n, s in tasks)
    context = multiprocessing.get_context("fork")
    with context.Pool(jobs, initializer=_init_worker, initargs=(profile,)) as pool:
        return sum(pool.imap_unordered(_write_in_worker, tasks, chunksize=4))


@dataclass
class Shape:
    """The figures the tests and `--compare` hold the synthetic files to."""

    stations: int
    rows: int
    missing_share_tmax: float
    missing_share_tmin: float
    missing_share_prcp: float
    mean_tmax_c: float
    mean_tmin_c: float
    share_max_below_min: float
    share_dry_days: float  # of the days with a precipitation value, the share with 0
    mean_wet_day_mm: float
    p99_wet_day_mm: float
    share_month_gaps: float  # stations with at least one gap


def describe(paths: list[Path]) -> Shape:
    """Measure the shape of these station files (one pass, constant memory apart from the
    wet-day amounts kept for their 99th percentile)."""
    rows = stations = gapped = below = 0
    missing = [0, 0, 0]
    sums = [0, 0]
    dry = 0
    wet_amounts: list[int] = []
    for path in paths:
        stations += 1
        previous_month, has_gap = None, False
        with path.open() as lines:
            for line in lines:
                date, *raw = line.split("\t")
                values = [int(v) for v in raw]
                rows += 1
                month_index = int(date[:4]) * 12 + int(date[4:6])
                has_gap |= previous_month is not None and month_index > previous_month + 1
                previous_month = month_index
                for k in range(3):
                    if values[k] == MISSING:
                        missing[k] += 1
                    elif k < 2:
                        sums[k] += values[k]
                tmax, tmin, prcp = values
                below += MISSING not in (tmax, tmin) and tmax < tmin
                if prcp == 0:
                    dry += 1
                elif prcp != MISSING:
                    wet_amounts.append(prcp)
        gapped += has_gap
    wet_amounts.sort()
    with_prcp = rows - missing[2]
    return Shape(
        stations=stations,
        rows=rows,
        missing_share_tmax=missing[0] / rows,
        missing_share_tmin=missing[1] / rows,
        missing_share_prcp=missing[2] / rows,
        mean_tmax_c=sums[0] / (rows - missing[0]) / 10,
        mean_tmin_c=sums[1] / (rows - missing[1]) / 10,
        share_max_below_min=below / rows,
        share_dry_days=dry / with_prcp,
        mean_wet_day_mm=sum(wet_amounts) / len(wet_amounts) / 10,
        p99_wet_day_mm=wet_amounts[int(0.99 * (len(wet_amounts) - 1))] / 10,
        share_month_gaps=gapped / stations,
    )


def compare_table(real: Shape, synthetic: Shape) -> str:
    """Markdown: the real files' shape beside the synthetic files'."""
    lines = ["| figure | real | synthetic |", "| --- | ---: | ---: |"]
    for name, value in asdict(real).items():
        other = asdict(synthetic)[name]
        if isinstance(value, int):
            lines.append(f"| {name} | {value:,} | {other:,} |")
        else:
            lines.append(f"| {name} | {value:.4f} | {other:.4f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="where to write the files (created)")
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--factor", type=float, help="stations = factor x the real stations")
    size.add_argument("--stations", type=int)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--first", type=int, default=1, help="number of the first station")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--source", type=Path, default=REAL_DATA, help="the real files")
    parser.add_argument("--compare", action="store_true", help="print real vs synthetic shape")
    options = parser.parse_args()

    started = time.perf_counter()
    profile = learn(real_files(options.source))
    learned = time.perf_counter() - started
    stations = options.stations
    if stations is None:
        stations = round(options.factor * len(profile.spans))
    rows = generate(
        options.folder, stations, options.seed, profile, jobs=options.jobs, first=options.first
    )
    elapsed = time.perf_counter() - started
    manifest = {
        "seed": options.seed,
        "first": options.first,
        "stations": stations,
        "rows": rows,
        "source": str(options.source),
    }
    (options.folder / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    print(
        f"{stations:,} stations, {rows:,} rows in {options.folder} in {elapsed:.1f} s "
        f"(learning the profile {learned:.1f} s; {options.jobs} processes; "
        f"{rows / max(elapsed - learned, 1e-9):,.0f} rows/s)",
        file=sys.stderr,
    )
    if options.compare:
        synthetic = sorted(options.folder.glob(f"{PREFIX}*.txt"))
        print(compare_table(describe(real_files(options.source)), describe(synthetic)))


if __name__ == "__main__":
    main()
