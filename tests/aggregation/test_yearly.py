"""Yearly statistics per station, on SQLite and on MariaDB.

Expected values are written out by hand or computed here with :mod:`decimal` from the integer
sums of tenths, never with the code under test.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update

from tests.conftest import DATA_DIR, noaa_line, write_station
from wxhub.aggregation import yearly
from wxhub.aggregation.main import run_aggregation
from wxhub.db.schema import (
    aggregation_pending,
    station_summary,
    weather_observations,
    weather_yearly_stats,
)
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import EXIT_OK, run_job

CENT = Decimal("0.01")
MISSING = -9999

stats = weather_yearly_stats
pending = aggregation_pending

# (avg max °C, avg min °C, total precipitation cm, max days, min days, precipitation days)
Stats = tuple[Decimal | None, Decimal | None, Decimal | None, int, int, int]
Tenths = int | None


# -- helpers -------------------------------------------------------------------------------


def _insert_days(
    engine: Engine,
    station_id: str,
    year: int,
    *,
    max_temps: Sequence[Tenths],
    min_temps: Sequence[Tenths],
    precipitation: Sequence[Tenths],
) -> None:
    """Observations on consecutive days from January 1st, and the station-year queued."""
    assert len(max_temps) == len(min_temps) == len(precipitation)
    first = dt.date(year, 1, 1)
    rows = [
        {
            "station_id": station_id,
            "obs_date": first + dt.timedelta(days=i),
            "max_temp_tenths_c": tmax,
            "min_temp_tenths_c": tmin,
            "precipitation_tenths_mm": prcp,
        }
        for i, (tmax, tmin, prcp) in enumerate(
            zip(max_temps, min_temps, precipitation, strict=True)
        )
    ]
    assert rows[-1]["obs_date"].year == year
    with engine.begin() as conn:
        conn.execute(insert(weather_observations), rows)
        conn.execute(insert(pending), [{"station_id": station_id, "year": year}])


def _stats(engine: Engine) -> dict[tuple[str, int], Stats]:
    columns = [
        stats.c.avg_max_temp_c,
        stats.c.avg_min_temp_c,
        stats.c.total_precipitation_cm,
        stats.c.max_temp_days,
        stats.c.min_temp_days,
        stats.c.precipitation_days,
    ]
    with engine.connect() as conn:
        rows = conn.execute(select(stats.c.station_id, stats.c.year, *columns)).all()
    return {(row[0], row[1]): tuple(row[2:]) for row in rows}


def _pending(engine: Engine) -> set[tuple[str, int]]:
    with engine.connect() as conn:
        return {(s, y) for s, y in conn.execute(select(pending.c.station_id, pending.c.year))}


def _tamper(engine: Engine, station_id: str, year: int) -> None:
    with engine.begin() as conn:
        result = conn.execute(
            update(stats)
            .where(stats.c.station_id == station_id, stats.c.year == year)
            .values(avg_max_temp_c=Decimal("99.99"), max_temp_days=99)
        )
        assert result.rowcount == 1


def _assert_cents(value: object) -> None:
    """A decimal.Decimal with exactly two decimal places."""
    assert isinstance(value, Decimal), f"{value!r} is a {type(value).__name__}, not a Decimal"
    assert value.as_tuple().exponent == -2, f"{value!r} does not have 2 decimal places"


def _half_up_mean_celsius(tenths: Sequence[int]) -> Decimal:
    """The mean of tenths of a degree, in degrees, rounded half up (away from zero) to 0.01."""
    return (Decimal(sum(tenths)) / (10 * len(tenths))).quantize(CENT, rounding=ROUND_HALF_UP)


def _lines(first: dt.date, days: Sequence[tuple[int, int, int]]) -> list[str]:
    return [
        noaa_line((first + dt.timedelta(days=i)).strftime("%Y%m%d"), *values)
        for i, values in enumerate(days)
    ]


def _run(engine: Engine, folder: Path, command: str = "run", **kwargs: bool) -> None:
    sources = resolve_sources([str(folder)])
    assert run_job(engine, command, sources=sources, workers=0, **kwargs) == EXIT_OK


# -- units, missing values and day counts --------------------------------------------------


def test_statistics_are_in_degrees_and_centimetres_with_missing_values_ignored(
    engine: Engine, tmp_path: Path
) -> None:
    write_station(
        tmp_path / "in",
        "USC00000001",
        _lines(
            dt.date(1990, 1, 1),
            [
                (100, -50, 0),
                (MISSING, MISSING, MISSING),
                (201, MISSING, 25),
                (MISSING, -61, MISSING),
                (55, MISSING, MISSING),
                (MISSING, MISSING, 1000),
            ],
        ),
    )
    _run(engine, tmp_path / "in")

    assert _stats(engine) == {
        ("USC00000001", 1990): (
            Decimal("11.87"),  # (100 + 201 + 55) / 3 = 118.67 tenths
            Decimal("-5.55"),  # (-50 - 61) / 2 = -55.5 tenths
            Decimal("10.25"),  # 0 + 25 + 1000 = 1025 tenths of a mm
            3,
            2,
            3,
        )
    }


def test_day_counts_are_the_numbers_of_non_missing_values_per_statistic(engine: Engine) -> None:
    # 10 days: max temperature missing on 2 of them, min on 5, precipitation on 7.
    max_temps = [10, None, 20, 30, None, 40, 50, 60, 70, 80]
    min_temps = [None, 1, None, 2, None, 3, None, 4, None, 5]
    precipitation = [None, None, 7, None, None, None, 8, None, None, 9]
    _insert_days(
        engine,
        "CNT",
        2003,
        max_temps=max_temps,
        min_temps=min_temps,
        precipitation=precipitation,
    )

    assert run_aggregation(engine) == 1

    avg_max, avg_min, total, max_days, min_days, prcp_days = _stats(engine)[("CNT", 2003)]
    assert (max_days, min_days, prcp_days) == (8, 5, 3)
    assert (avg_max, avg_min, total) == (Decimal("4.50"), Decimal("0.30"), Decimal("0.24"))


@pytest.mark.parametrize(
    ("missing", "null_index", "days_index"),
    [
        pytest.param("max", 0, 3, id="max-temperature"),
        pytest.param("min", 1, 4, id="min-temperature"),
        pytest.param("precipitation", 2, 5, id="precipitation"),
    ],
)
def test_statistic_with_every_value_missing_is_null_with_zero_days(
    engine: Engine, missing: str, null_index: int, days_index: int
) -> None:
    columns: dict[str, list[Tenths]] = {
        "max": [250, 260, 270],
        "min": [-10, -20, -30],
        "precipitation": [0, 0, 0],  # zero rain is a value, unlike a missing one
    }
    columns[missing] = [None, None, None]
    _insert_days(
        engine,
        "ALLMISS",
        2010,
        max_temps=columns["max"],
        min_temps=columns["min"],
        precipitation=columns["precipitation"],
    )

    assert run_aggregation(engine) == 1

    row = _stats(engine)[("ALLMISS", 2010)]
    assert row[null_index] is None
    assert row[days_index] == 0
    present = {
        "max": (Decimal("26.00"), 3),
        "min": (Decimal("-2.00"), 3),
        "precipitation": (Decimal("0.00"), 3),
    }
    for name, index in (("max", 0), ("min", 1), ("precipitation", 2)):
        if name != missing:
            assert (row[index], row[index + 3]) == present[name]


def test_year_with_all_precipitation_missing_has_null_total(engine: Engine, tmp_path: Path) -> None:
    write_station(
        tmp_path / "in",
        "USC00000002",
        _lines(dt.date(1995, 6, 1), [(300, 150, MISSING), (310, 160, MISSING)]),
    )
    _run(engine, tmp_path / "in")

    assert _stats(engine)[("USC00000002", 1995)] == (
        Decimal("30.50"),
        Decimal("15.50"),
        None,
        2,
        2,
        0,
    )


def test_days_are_grouped_by_calendar_year_and_station(engine: Engine, tmp_path: Path) -> None:
    write_station(
        tmp_path / "in",
        "USC00000003",
        _lines(dt.date(1999, 12, 31), [(10, 0, 1), (20, 0, 2)])  # 1999-12-31, 2000-01-01
        + _lines(dt.date(2000, 2, 29), [(30, 0, 4)])
        + _lines(dt.date(2000, 12, 31), [(40, 0, 8), (50, 0, 16)]),  # ..., 2001-01-01
    )
    write_station(tmp_path / "in", "USC00000004", _lines(dt.date(2000, 7, 1), [(-70, -80, 32)]))
    _run(engine, tmp_path / "in")

    zero = Decimal("0.00")
    assert _stats(engine) == {
        ("USC00000003", 1999): (Decimal("1.00"), zero, Decimal("0.01"), 1, 1, 1),
        ("USC00000003", 2000): (Decimal("3.00"), zero, Decimal("0.14"), 3, 3, 3),
        ("USC00000003", 2001): (Decimal("5.00"), zero, Decimal("0.16"), 1, 1, 1),
        ("USC00000004", 2000): (Decimal("-7.00"), Decimal("-8.00"), Decimal("0.32"), 1, 1, 1),
    }


def test_stations_differing_only_in_case_are_aggregated_separately(engine: Engine) -> None:
    _insert_days(engine, "usc1", 2005, max_temps=[10], min_temps=[0], precipitation=[0])
    _insert_days(engine, "USC1", 2005, max_temps=[20], min_temps=[0], precipitation=[0])

    assert run_aggregation(engine) == 2

    rows = _stats(engine)
    assert rows[("usc1", 2005)][0] == Decimal("1.00")
    assert rows[("USC1", 2005)][0] == Decimal("2.00")


# -- rounding ------------------------------------------------------------------------------

# (tenths of a degree, the mean in degrees rounded half away from zero to 0.01)
ROUNDING_CASES = [
    pytest.param([1, 0, 0, 0], "0.03", id="0.025-tie-up"),
    pytest.param([-1, 0, 0, 0], "-0.03", id="-0.025-tie-away-from-zero"),
    pytest.param([3, 0, 0, 0], "0.08", id="0.075-tie"),
    pytest.param([-3, 0, 0, 0], "-0.08", id="-0.075-tie"),
    pytest.param([1, 1, 1, 2], "0.13", id="0.125-tie"),
    pytest.param([-1, -1, -1, -2], "-0.13", id="-0.125-tie"),
    pytest.param([2, -1, 0, 0], "0.03", id="mixed-signs-sum-1-tie"),
    pytest.param([-2, 1, 0, 0], "-0.03", id="mixed-signs-sum-minus-1-tie"),
    pytest.param([5, *[0] * 19], "0.03", id="0.025-tie-over-20-days"),
    # Ties a binary float gets wrong: round(2.675, 2) == 2.67 and round(1.005, 2) == 1.0.
    pytest.param([26, 27, 27, 27], "2.68", id="2.675-tie"),
    pytest.param([11, *[10] * 19], "1.01", id="1.005-tie"),
    pytest.param([-11, *[-10] * 19], "-1.01", id="-1.005-tie"),
    pytest.param([455, 455, 455, 456], "45.53", id="45.525-tie"),
    pytest.param([-455, -455, -455, -456], "-45.53", id="-45.525-tie"),
    pytest.param([599, 600, 600, 600], "59.98", id="59.975-tie-near-upper-limit"),
    pytest.param([-899, -900, -900, -900], "-89.98", id="-89.975-tie-near-lower-limit"),
    pytest.param([1, *[0] * 7], "0.01", id="0.0125-rounds-down"),
    pytest.param([3, *[0] * 7], "0.04", id="0.0375-rounds-up"),
    pytest.param([-3, *[0] * 7], "-0.04", id="-0.0375-rounds-away"),
    pytest.param([1, 0, 0], "0.03", id="0.0333-rounds-down"),
    pytest.param([2, 0, 0], "0.07", id="0.0667-rounds-up"),
    pytest.param([-2, 0, 0], "-0.07", id="-0.0667"),
    pytest.param([1, *[0] * 39], "0.00", id="0.0025-rounds-to-zero"),
    pytest.param([0, 0, 0, 0], "0.00", id="zero"),
    pytest.param([153, 154, 153, 154], "15.35", id="exact-15.35"),
    pytest.param([600] * 366, "60.00", id="leap-year-at-upper-limit"),
    pytest.param([-900] * 366, "-90.00", id="leap-year-at-lower-limit"),
]


@pytest.mark.parametrize(("tenths", "expected"), ROUNDING_CASES)
def test_averages_round_half_away_from_zero_to_hundredths(
    engine: Engine, tenths: list[int], expected: str
) -> None:
    # The table itself agrees with decimal's ROUND_HALF_UP on the integer sum.
    assert _half_up_mean_celsius(tenths) == Decimal(expected)
    # The min temperature column gets the negated values (rounding must be symmetric), unless
    # they would leave the allowed range (-900..600 tenths): then the same values.
    negated = [-t for t in tenths]
    sign = -1 if all(-900 <= t <= 600 for t in negated) else 1
    min_temps = negated if sign == -1 else tenths
    _insert_days(
        engine,
        "ROUND",
        2000,
        max_temps=tenths,
        min_temps=min_temps,
        precipitation=[None] * len(tenths),
    )

    assert run_aggregation(engine) == 1

    avg_max, avg_min, total, max_days, min_days, _ = _stats(engine)[("ROUND", 2000)]
    _assert_cents(avg_max)
    _assert_cents(avg_min)
    assert avg_max == Decimal(expected)
    assert avg_min == sign * Decimal(expected)
    assert total is None
    assert max_days == min_days == len(tenths)


@pytest.mark.parametrize(
    ("tenths_mm", "expected_cm"),
    [
        pytest.param([1], "0.01", id="one-tenth-of-a-mm"),
        pytest.param([7801], "78.01", id="78.01"),
        pytest.param([0, 0], "0.00", id="dry-year"),
        pytest.param([100, 99, 1], "2.00", id="whole-number"),
        pytest.param([20000] * 365 + [19999], "73199.99", id="wettest-possible-leap-year"),
    ],
)
def test_total_precipitation_is_the_exact_sum_in_centimetres(
    engine: Engine, tenths_mm: list[int], expected_cm: str
) -> None:
    assert Decimal(sum(tenths_mm)) / 100 == Decimal(expected_cm)
    count = len(tenths_mm)
    _insert_days(
        engine,
        "RAIN",
        2000,
        max_temps=[None] * count,
        min_temps=[None] * count,
        precipitation=tenths_mm,
    )

    assert run_aggregation(engine) == 1

    avg_max, avg_min, total, *_ = _stats(engine)[("RAIN", 2000)]
    _assert_cents(total)
    assert total == Decimal(expected_cm)
    assert (avg_max, avg_min) == (None, None)


def test_every_statistic_comes_back_as_a_decimal_with_two_places(
    engine: Engine, tmp_path: Path
) -> None:
    write_station(
        tmp_path / "in",
        "USC00000005",
        _lines(dt.date(2001, 3, 1), [(100, 0, 50), (120, 10, 0), (110, 20, 30)]),
    )
    _run(engine, tmp_path / "in")

    avg_max, avg_min, total, *days = _stats(engine)[("USC00000005", 2001)]
    # Whole numbers too: 11.00, 1.00 and 0.80 must not come back as 11, 1 or 0.8.
    for value in (avg_max, avg_min, total):
        _assert_cents(value)
    assert (avg_max, avg_min, total) == (Decimal("11.00"), Decimal("1.00"), Decimal("0.80"))
    assert days == [3, 3, 3]


# -- incremental and full recomputation ----------------------------------------------------

S1, S2 = "USC00000011", "USC00000012"
S1_2000 = [(100, 0, 10), (110, 10, 20), (120, 20, 30)]
S1_2001 = [(200, 0, 0), (210, 0, 0), (220, 0, 0)]
S2_2000 = [(50, -10, 0), (60, -20, 5)]

S1_2000_STATS: Stats = (Decimal("11.00"), Decimal("1.00"), Decimal("0.60"), 3, 3, 3)
S1_2001_STATS: Stats = (Decimal("21.00"), Decimal("0.00"), Decimal("0.00"), 3, 3, 3)
S1_2001_CORRECTED_STATS: Stats = (Decimal("22.00"), Decimal("0.00"), Decimal("0.00"), 3, 3, 3)
S2_2000_STATS: Stats = (Decimal("5.50"), Decimal("-1.50"), Decimal("0.05"), 2, 2, 2)
TAMPERED_COLUMNS = (Decimal("99.99"), 99)  # avg_max_temp_c, max_temp_days


def _tampered(row: Stats) -> Stats:
    return (TAMPERED_COLUMNS[0], row[1], row[2], TAMPERED_COLUMNS[1], row[4], row[5])


def _write_first_load(folder: Path) -> None:
    write_station(
        folder, S1, _lines(dt.date(2000, 1, 1), S1_2000) + _lines(dt.date(2001, 1, 1), S1_2001)
    )
    write_station(folder, S2, _lines(dt.date(2000, 1, 1), S2_2000))


def _insert_orphan_statistics(engine: Engine, station_id: str, year: int) -> None:
    """A statistics row for a station-year that has no observations at all."""
    with engine.begin() as conn:
        conn.execute(
            insert(stats).values(
                station_id=station_id,
                year=year,
                avg_max_temp_c=Decimal("1.00"),
                avg_min_temp_c=Decimal("1.00"),
                total_precipitation_cm=Decimal("1.00"),
                max_temp_days=1,
                min_temp_days=1,
                precipitation_days=1,
            )
        )


def test_only_queued_station_years_are_recomputed(engine: Engine, tmp_path: Path) -> None:
    _write_first_load(tmp_path / "first")
    _run(engine, tmp_path / "first")
    assert _stats(engine) == {
        (S1, 2000): S1_2000_STATS,
        (S1, 2001): S1_2001_STATS,
        (S2, 2000): S2_2000_STATS,
    }
    assert _pending(engine) == set()

    # Station-years the correction below does not touch: one of another station, one of the
    # corrected station itself.
    _tamper(engine, S2, 2000)
    _tamper(engine, S1, 2000)

    # The correction changes one day of S1 in 2001 (210 -> 240) and repeats the rest.
    corrected_2001 = [S1_2001[0], (240, 0, 0), S1_2001[2]]
    write_station(
        tmp_path / "correction",
        S1,
        _lines(dt.date(2000, 1, 1), S1_2000) + _lines(dt.date(2001, 1, 1), corrected_2001),
    )
    _run(engine, tmp_path / "correction", "ingest", do_aggregate=False)
    assert _pending(engine) == {(S1, 2001)}

    assert run_aggregation(engine) == 1

    assert _stats(engine) == {
        (S1, 2000): _tampered(S1_2000_STATS),
        (S1, 2001): S1_2001_CORRECTED_STATS,
        (S2, 2000): _tampered(S2_2000_STATS),
    }
    assert _pending(engine) == set()


def test_full_recomputation_repairs_tampered_rows_and_drops_rows_without_observations(
    engine: Engine, tmp_path: Path
) -> None:
    _write_first_load(tmp_path / "first")
    _run(engine, tmp_path / "first")
    _tamper(engine, S2, 2000)
    _tamper(engine, S1, 2000)
    _insert_orphan_statistics(engine, "USC00000099", 1999)

    assert run_aggregation(engine, full=True) == 3

    assert _stats(engine) == {
        (S1, 2000): S1_2000_STATS,
        (S1, 2001): S1_2001_STATS,
        (S2, 2000): S2_2000_STATS,
    }
    assert _pending(engine) == set()


def test_full_recomputation_also_drops_rows_of_queued_station_years_without_observations(
    engine: Engine,
) -> None:
    # Observations of a station-year deleted and the station-year queued: a full
    # recomputation leaves no statistics for it, as an incremental one does.
    _insert_days(engine, "KEEP", 2000, max_temps=[10], min_temps=[10], precipitation=[10])
    _insert_orphan_statistics(engine, "GONE", 2000)
    with engine.begin() as conn:
        conn.execute(insert(pending).values(station_id="GONE", year=2000))

    assert run_aggregation(engine, full=True) == 2  # KEEP 2000, and GONE 2000 (to no row)

    assert set(_stats(engine)) == {("KEEP", 2000)}
    assert _pending(engine) == set()


def test_aggregation_with_nothing_queued_returns_zero_and_changes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    _write_first_load(tmp_path / "first")
    _run(engine, tmp_path / "first")
    _tamper(engine, S2, 2000)
    before = _stats(engine)

    assert run_aggregation(engine) == 0

    assert _stats(engine) == before
    assert before[(S2, 2000)] == _tampered(S2_2000_STATS)


def test_rerunning_the_same_files_queues_and_recomputes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    _write_first_load(tmp_path / "first")
    _run(engine, tmp_path / "first")
    _tamper(engine, S1, 2001)
    before = _stats(engine)

    _run(engine, tmp_path / "first")  # every file is in the ledger: skipped

    assert _stats(engine) == before
    assert _pending(engine) == set()


def test_stations_are_aggregated_in_batches_with_the_same_statistics_as_in_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MySQL/MariaDB group the queued stations a batch at a time (so the grouping stays in
    memory whatever the table's size): batches of two stations over seven, the last one
    short, give each queued station-year exactly its statistics, and only those."""
    monkeypatch.setattr(yearly, "BATCH_STATIONS", 2)
    temperatures = {}
    for number in range(7):
        station = f"B{number}"
        for year in (2000, 2001):
            highs = [100 + number, 215 - year % 2, -35 + number * year % 7]
            temperatures[station, year] = highs
            _insert_days(
                engine, station, year, max_temps=highs, min_temps=highs, precipitation=[1, 2, 3]
            )
    with engine.begin() as conn:  # one station-year left out of the queue: not recomputed
        conn.execute(pending.delete().where(pending.c.station_id == "B3", pending.c.year == 2001))

    assert run_aggregation(engine) == 13

    computed = _stats(engine)
    assert set(computed) == set(temperatures) - {("B3", 2001)}
    for key, highs in temperatures.items():
        if key != ("B3", 2001):
            mean = _half_up_mean_celsius(highs)
            assert computed[key] == (mean, mean, Decimal("0.06"), 3, 3, 3), key
    assert _pending(engine) == set()


def test_queued_station_year_without_observations_loses_its_statistics(engine: Engine) -> None:
    _insert_days(engine, "KEEP", 2000, max_temps=[10], min_temps=[10], precipitation=[10])
    _insert_orphan_statistics(engine, "GONE", 2000)
    _insert_orphan_statistics(engine, "STAY", 2000)  # not queued: left alone
    with engine.begin() as conn:
        conn.execute(insert(pending).values(station_id="GONE", year=2000))

    assert run_aggregation(engine) == 2

    assert set(_stats(engine)) == {("KEEP", 2000), ("STAY", 2000)}
    assert _pending(engine) == set()


# -- the station summary -------------------------------------------------------------------

S3 = "USC00000013"
SENTINEL_DAYS = 999  # no station here has that many days: only a rewrite would remove it


def _summary(engine: Engine) -> dict[str, tuple[dt.date, dt.date, int]]:
    with engine.connect() as conn:
        rows = conn.execute(select(station_summary)).all()
    return {r.station_id: (r.first_obs_date, r.last_obs_date, r.observation_days) for r in rows}


def test_an_update_to_one_station_changes_exactly_its_summary_row_and_no_other(
    engine: Engine, tmp_path: Path
) -> None:
    _write_first_load(tmp_path / "first")
    write_station(tmp_path / "first", S3, _lines(dt.date(1999, 6, 1), [(10, 0, 0), (20, 0, 0)]))
    _run(engine, tmp_path / "first")
    assert _summary(engine) == {
        S1: (dt.date(2000, 1, 1), dt.date(2001, 1, 3), 6),
        S2: (dt.date(2000, 1, 1), dt.date(2000, 1, 2), 2),
        S3: (dt.date(1999, 6, 1), dt.date(1999, 6, 2), 2),
    }
    with engine.begin() as conn:
        conn.execute(
            update(station_summary)
            .where(station_summary.c.station_id == S2)
            .values(observation_days=SENTINEL_DAYS)
        )
    others = {station: row for station, row in _summary(engine).items() if station != S1}

    # A later file for S1: the days already loaded again, one more day in 2001, a new last
    # day in a new year, and an earlier first day.
    write_station(
        tmp_path / "later",
        S1,
        _lines(dt.date(1999, 12, 31), [(90, 0, 0)])
        + _lines(dt.date(2000, 1, 1), S1_2000)
        + _lines(dt.date(2001, 1, 1), [*S1_2001, (230, 0, 0)])
        + _lines(dt.date(2002, 3, 1), [(300, 0, 0), (310, 0, 0)]),
    )
    _run(engine, tmp_path / "later")

    after = _summary(engine)
    assert after[S1] == (dt.date(1999, 12, 31), dt.date(2002, 3, 2), 1 + 3 + 4 + 2)
    assert {station: row for station, row in after.items() if station != S1} == others
    assert after[S2][2] == SENTINEL_DAYS


# -- the full data set ---------------------------------------------------------------------


def _independent_statistics(folder: Path) -> dict[tuple[str, int], Stats]:
    """Every station-year of the raw files, computed in plain Python with Decimal."""
    sums: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    counts: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0, 0])
    for path in sorted(folder.glob("*.txt")):
        station_id = path.name.removesuffix(".txt")
        for line in path.read_text(encoding="ascii").splitlines():
            if not line.strip():
                continue
            date, *fields = line.split("\t")
            key = (station_id, int(date[:4]))
            for i, field in enumerate(fields):
                value = int(field)
                if value != MISSING:
                    sums[key][i] += value
                    counts[key][i] += 1
    result: dict[tuple[str, int], Stats] = {}
    for key, (nmax, nmin, nprcp) in counts.items():
        smax, smin, sprcp = sums[key]
        result[key] = (
            (Decimal(smax) / (10 * nmax)).quantize(CENT, ROUND_HALF_UP) if nmax else None,
            (Decimal(smin) / (10 * nmin)).quantize(CENT, ROUND_HALF_UP) if nmin else None,
            (Decimal(sprcp) / 100).quantize(CENT) if nprcp else None,
            nmax,
            nmin,
            nprcp,
        )
    return result


@pytest.fixture(scope="module")
def expected_full_data_set() -> dict[tuple[str, int], Stats]:
    return _independent_statistics(DATA_DIR)


@pytest.mark.slow
def test_full_data_set_statistics_equal_an_independent_computation(
    engine: Engine, expected_full_data_set: dict[tuple[str, int], Stats]
) -> None:
    expected = expected_full_data_set
    assert len(expected) == 4820
    assert sum(1 for row in expected.values() if None in row[:3]) == 28

    _run(engine, DATA_DIR)
    actual = _stats(engine)

    assert actual.keys() == expected.keys()
    different = {key: (actual[key], row) for key, row in expected.items() if actual[key] != row}
    assert not different, (
        f"{len(different)} station-years differ, e.g. {list(different.items())[:5]}"
    )
    for row in actual.values():
        for value in row[:3]:
            if value is not None:
                _assert_cents(value)
    assert sum(1 for row in actual.values() if None in row[:3]) == 28
    assert actual[("USC00110072", 1985)][:4] == (
        Decimal("15.33"),
        Decimal("4.33"),
        Decimal("78.01"),
        365,
    )
    assert _pending(engine) == set()


def test_observation_days_count_every_stored_day_even_one_with_every_value_missing(
    engine: Engine,
) -> None:
    _insert_days(
        engine,
        "S9",
        2003,
        max_temps=[10, None, 30],
        min_temps=[1, None, 3],
        precipitation=[0, None, 0],
    )

    assert run_aggregation(engine) == 1

    with engine.connect() as conn:
        row = conn.execute(
            select(
                weather_yearly_stats.c.max_temp_days, weather_yearly_stats.c.observation_days
            ).where(weather_yearly_stats.c.station_id == "S9")
        ).one()
    assert tuple(row) == (2, 3)
