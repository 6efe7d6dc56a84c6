"""bench/gen_synthetic.py: synthetic station files load cleanly through wxhub's own parser,
are the same for the same seed, and look like the real files they were learned from.

The profile is learned from every fifth real file (34 stations) to keep the module to a few
seconds; the shape is compared with those same files, so the tolerances test the generator,
not the sample.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import DATA_DIR, bench_module
from wxhub.ingestion.formats.wx import parse

SYNTHETIC_STATIONS = 30


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """The script as a module (bench/ is a folder of scripts, not a package)."""
    return bench_module("gen_synthetic")


@pytest.fixture(scope="module")
def real_sample(gen: ModuleType) -> list[Path]:
    return gen.real_files(DATA_DIR)[::5]


@pytest.fixture(scope="module")
def profile(gen: ModuleType, real_sample: list[Path]) -> object:
    return gen.learn(real_sample)


@pytest.fixture(scope="module")
def synthetic(gen: ModuleType, profile: object, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("synthetic")
    gen.generate(folder, SYNTHETIC_STATIONS, 7, profile, jobs=2)
    return folder


def files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.txt"))


def test_every_file_parses_with_no_rejects(synthetic: Path) -> None:
    paths = files(synthetic)
    assert len(paths) == SYNTHETIC_STATIONS
    for path in paths:
        data = path.read_bytes()
        parsed = parse(data, path.stem)
        assert parsed.rejects == []
        assert parsed.row_count == data.count(b"\n") > 0


def is_noaa_line(line: str) -> bool:
    """``YYYYMMDD`` then three integers right-aligned in 5 characters, tab-separated (the
    shape of tests.conftest.noaa_line)."""
    date, *values = line.split("\t")
    if not re.fullmatch(r"[0-9]{8}", date) or len(values) != 3:
        return False
    return all(re.fullmatch(r" *-?[0-9]+", v) and v == f"{int(v):>5}" for v in values)


def test_every_line_is_in_noaa_format(synthetic: Path) -> None:
    for path in files(synthetic):
        text = path.read_text()
        assert text.endswith("\n")
        bad = [line for line in text.splitlines() if not is_noaa_line(line)]
        assert bad == [], path.name


def test_dates_rise_in_whole_months_with_month_gaps(synthetic: Path) -> None:
    for path in files(synthetic):
        dates = [
            dt.datetime.strptime(line[:8], "%Y%m%d").date()
            for line in path.read_text().splitlines()
        ]
        assert dates[0].day == 1
        assert (dates[-1] + dt.timedelta(days=1)).day == 1
        for before, after in itertools.pairwise(dates):
            assert after > before
            if after - before != dt.timedelta(days=1):  # a gap: whole months missing
                assert after.day == 1
                assert (before + dt.timedelta(days=1)).day == 1


def test_station_ids_are_eleven_characters_and_never_real(gen: ModuleType, synthetic: Path) -> None:
    real = {path.stem for path in files(DATA_DIR)}
    ids = {path.stem for path in files(synthetic)}
    assert all(re.fullmatch(r"SYN[0-9]{8}", station) for station in ids)
    assert ids.isdisjoint(real)
    assert gen.station_id(1) == "SYN00000001"


def test_station_number_beyond_eight_digits_is_refused(gen: ModuleType) -> None:
    with pytest.raises(ValueError, match="8 digits"):
        gen.station_id(10**8)


def test_same_seed_gives_the_same_files_in_one_process_or_several(
    gen: ModuleType, profile: object, synthetic: Path, tmp_path: Path
) -> None:
    gen.generate(tmp_path, 4, 7, profile, jobs=1)
    for path in files(tmp_path):
        assert path.read_bytes() == (synthetic / path.name).read_bytes()


def test_another_seed_gives_other_files(
    gen: ModuleType, profile: object, synthetic: Path, tmp_path: Path
) -> None:
    gen.generate(tmp_path, 2, 8, profile)
    for path in files(tmp_path):
        assert path.read_bytes() != (synthetic / path.name).read_bytes()


def test_first_numbers_the_stations(gen: ModuleType, profile: object, tmp_path: Path) -> None:
    gen.generate(tmp_path, 2, 7, profile, first=41)
    assert [p.stem for p in files(tmp_path)] == ["SYN00000041", "SYN00000042"]
    assert not list(tmp_path.glob("*.part"))


def test_lines_come_a_month_at_a_time(gen: ModuleType, profile: object) -> None:
    """Memory stays constant: the writer never holds more than one month of lines."""
    chunks = list(gen.station_lines(3, 7, profile))
    assert len(chunks) > 12
    assert all(1 <= chunk.count("\n") <= 31 for chunk in chunks)


def test_shape_is_the_real_files_shape(
    gen: ModuleType, real_sample: list[Path], synthetic: Path
) -> None:
    real = gen.describe(real_sample)
    fake = gen.describe(files(synthetic))
    for field in ("missing_share_tmax", "missing_share_tmin", "missing_share_prcp"):
        assert getattr(fake, field) == pytest.approx(getattr(real, field), abs=0.01), field
        assert getattr(fake, field) > 0.005, field  # missing values do occur
    assert fake.mean_tmax_c == pytest.approx(real.mean_tmax_c, abs=1.0)
    assert fake.mean_tmin_c == pytest.approx(real.mean_tmin_c, abs=1.0)
    assert fake.share_max_below_min == 0
    assert fake.share_dry_days == pytest.approx(real.share_dry_days, abs=0.03)
    assert fake.mean_wet_day_mm == pytest.approx(real.mean_wet_day_mm, rel=0.15)
    assert fake.p99_wet_day_mm == pytest.approx(real.p99_wet_day_mm, rel=0.25)
    assert fake.rows / fake.stations == pytest.approx(real.rows / real.stations, rel=0.2)


def test_temperatures_follow_the_seasons(gen: ModuleType, synthetic: Path) -> None:
    """July is warmer than January, and no day's maximum is below its minimum."""
    by_month: dict[str, list[int]] = {"01": [], "07": []}
    for path in files(synthetic):
        for line in path.read_text().splitlines():
            date, tmax, tmin, _ = line.split("\t")
            if date[4:6] in by_month and int(tmax) != gen.MISSING:
                by_month[date[4:6]].append(int(tmax))
            if gen.MISSING not in (int(tmax), int(tmin)):
                assert int(tmax) >= int(tmin)
    january = sum(by_month["01"]) / len(by_month["01"]) / 10
    july = sum(by_month["07"]) / len(by_month["07"]) / 10
    assert july - january > 20
