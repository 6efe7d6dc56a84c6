"""bench/gen_ghcn.py: the GHCN-Daily files it writes have NOAA's published shape, carry the
noise the module promises, and hold exactly the wx_data values apart from the ones its
manifest names as Q-flagged; by-year files cover every station and day in no order; a changed
copy differs in exactly the values it reports.

The files are read back with the small readers below, written from NOAA's format description
and not from the generator's code. The first 2,000 days of six real station files (flagged at
1%, ten times the default, so there are a few hundred flags to check) and by-year files of a
dozen stations keep the module to a few seconds.
"""

from __future__ import annotations

import calendar
import datetime as dt
import gzip
import itertools
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import DATA_DIR, REPO_ROOT, bench_module

GENERATOR = REPO_ROOT / "bench" / "gen_ghcn.py"
SEED = 7
QC_RATE = 0.01
WX_DAYS = 2000
CORE = {"TMAX", "TMIN", "PRCP"}
HEADER = "ID,DATE,ELEMENT,DATA_VALUE,M_FLAG,Q_FLAG,S_FLAG,OBS_TIME"
# The CSV fields as NOAA documents them.
CSV_LINE = re.compile(
    r"(?P<id>[A-Z0-9]{11}),(?P<date>[0-9]{8}),(?P<element>[A-Z0-9]{4}),"
    r"(?P<value>-?[0-9]+),(?P<m>[BDHKLOPTW]?),(?P<q>[DGIKLMNORSTWXZ]?),"
    r"(?P<s>[0-9A-Za-z]?),(?P<obs_time>(?:[01][0-9]|2[0-4])[0-5][0-9]|)"
)
DLY_SLOT = re.compile(r"(?P<value>[ -]*[0-9]+)(?P<m>[ BDHKLOPTW])(?P<q>[ DGIKLMNORSTWXZ])(?P<s>.)")
BY_YEAR_STATIONS = 12
BY_YEAR = 2024

# A value as read back: (station, date, element) -> (value, M, Q, S).
Values = dict[tuple[str, str, str], tuple[int, str, str, str]]


@pytest.fixture(scope="module")
def gen() -> ModuleType:
    """The script as a module (bench/ is a folder of scripts, not a package)."""
    return bench_module("gen_ghcn")


@pytest.fixture(scope="module")
def wx_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 2,000 days of six real station files, spread over the vendored set."""
    folder = tmp_path_factory.mktemp("wx")
    for path in sorted(DATA_DIR.glob("*.txt"))[::30]:
        lines = path.read_text().splitlines(keepends=True)[:WX_DAYS]
        (folder / path.name).write_text("".join(lines))
    return folder


def generate(gen: ModuleType, wx_folder: Path, dest: Path, layout: str, **options: Any) -> Any:
    options = {"seed": SEED, "qc_rate": QC_RATE, **options}
    return gen.wx_to_ghcn(wx_folder, dest, layout=layout, **options)


@pytest.fixture(scope="module")
def ghcn(
    gen: ModuleType, wx_folder: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """The six stations in each layout, seed 7."""
    folders = {}
    for layout in ("csv", "csv.gz", "dly"):
        folders[layout] = tmp_path_factory.mktemp(layout.replace(".", "-"))
        generate(gen, wx_folder, folders[layout], layout)
    return folders


@pytest.fixture(scope="module")
def read_back(ghcn: dict[str, Path]) -> dict[str, Values]:
    """Each layout's values, read once by the readers below."""
    return {layout: read_folder(folder, layout) for layout, folder in ghcn.items()}


# --- Independent readers -------------------------------------------------------------------


def read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode("ascii")


def csv_rows(path: Path) -> list[re.Match[str]]:
    """Every data line of a CSV file, matched against NOAA's field description; the header
    is allowed as the first line only."""
    text = read_text(path)
    assert text.endswith("\n")
    assert "\r" not in text
    lines = text.split("\n")[:-1]
    if lines and lines[0] == HEADER:
        lines = lines[1:]
    rows = []
    for number, line in enumerate(lines, start=1):
        match = CSV_LINE.fullmatch(line)
        assert match, f"{path.name}:{number}: {line!r}"
        rows.append(match)
    return rows


def csv_values(path: Path) -> Values:
    values: Values = {}
    for row in csv_rows(path):
        key = (row["id"], row["date"], row["element"])
        assert key not in values, f"{key} twice"
        values[key] = (int(row["value"]), row["m"], row["q"], row["s"])
    return values


def columns(line: str, first: int, last: int) -> str:
    """NOAA's 1-based, inclusive columns."""
    return line[first - 1 : last]


def dly_values(path: Path) -> Values:
    """Every value of a .dly file, each line checked against NOAA's column layout."""
    values: Values = {}
    text = read_text(path)
    assert text.endswith("\n")
    for number, line in enumerate(text.split("\n")[:-1], start=1):
        where = f"{path.name}:{number}"
        assert len(line) == 269, where
        station = columns(line, 1, 11)
        year, month = int(columns(line, 12, 15)), int(columns(line, 16, 17))
        element = columns(line, 18, 21)
        assert re.fullmatch(r"[A-Z0-9]{11}", station), where
        assert re.fullmatch(r"[A-Z0-9]{4}", element), where
        month_days = calendar.monthrange(year, month)[1]
        for day in range(1, 32):
            start = 22 + 8 * (day - 1)
            slot = DLY_SLOT.fullmatch(columns(line, start, start + 7))
            assert slot, f"{where} day {day}"
            value = int(slot["value"])
            if value == -9999:
                assert columns(line, start + 5, start + 7) == "   ", f"{where} day {day}"
                continue
            assert day <= month_days, f"{where}: a value on day {day}"
            assert slot["s"] != " ", f"{where} day {day}: no S flag"
            key = (station, f"{year:04d}{month:02d}{day:02d}", element)
            assert key not in values, f"{key} twice"
            values[key] = (value, slot["m"].strip(), slot["q"].strip(), slot["s"])
    return values


def read_folder(folder: Path, layout: str) -> Values:
    values: Values = {}
    for path in sorted(folder.glob(f"*.{layout}")):
        values.update(dly_values(path) if layout == "dly" else csv_values(path))
    return values


def wx_values(folder: Path) -> dict[tuple[str, str, str], int]:
    """The present values of the wx_data files: (station, date, element) -> value."""
    values = {}
    for path in sorted(folder.glob("*.txt")):
        for line in path.read_text().splitlines():
            date, *fields = line.split("\t")
            for element, field in zip(("TMAX", "TMIN", "PRCP"), fields, strict=True):
                if int(field) != -9999:
                    values[path.stem, date, element] = int(field)
    return values


def flagged_in(values: Values) -> set[tuple[str, str, str, str, int]]:
    return {(*key, q, value) for key, (value, _, q, _) in values.items() if q}


def flagged_in_manifest(manifest: Any) -> set[tuple[str, str, str, str, int]]:
    return {(f.station_id, f.date, f.element, f.flag, f.value) for f in manifest.flagged}


# --- By-station files from wx_data ---------------------------------------------------------


def test_same_seed_gives_the_same_bytes_and_another_seed_other_files(
    gen: ModuleType, wx_folder: Path, ghcn: dict[str, Path], tmp_path: Path
) -> None:
    generate(gen, wx_folder, tmp_path / "again", "csv.gz")
    generate(gen, wx_folder, tmp_path / "other", "csv.gz", seed=SEED + 1)
    names = sorted(p.name for p in ghcn["csv.gz"].glob("*.csv.gz"))
    assert len(names) == 6
    for name in names:
        assert (tmp_path / "again" / name).read_bytes() == (ghcn["csv.gz"] / name).read_bytes()
        assert (tmp_path / "other" / name).read_bytes() != (ghcn["csv.gz"] / name).read_bytes()


@pytest.mark.parametrize("layout", ["csv", "csv.gz"])
def test_every_csv_line_has_noaas_eight_fields_and_an_s_flag(
    layout: str, ghcn: dict[str, Path]
) -> None:
    for path in ghcn[layout].glob(f"*.{layout}"):
        rows = csv_rows(path)
        assert rows
        assert all(row["s"] for row in rows), path.name
        assert {row["id"] for row in rows} == {path.name.split(".")[0]}


def test_every_dly_line_is_269_characters_in_noaas_columns(ghcn: dict[str, Path]) -> None:
    for path in ghcn["dly"].glob("*.dly"):
        assert dly_values(path)  # the reader asserts the layout of every line and slot


@pytest.mark.parametrize("layout", ["csv", "csv.gz", "dly"])
def test_manifest_lists_exactly_the_values_with_a_q_flag(
    gen: ModuleType, layout: str, ghcn: dict[str, Path], read_back: dict[str, Values]
) -> None:
    manifest = gen.Manifest.read(ghcn[layout] / "manifest.json")
    values = read_back[layout]
    assert flagged_in(values) == flagged_in_manifest(manifest)
    assert len(manifest.flagged) > 200
    assert {f.element for f in manifest.flagged} == CORE  # only core values are flagged


@pytest.mark.parametrize("layout", ["csv.gz", "dly"])
def test_unflagged_core_values_are_exactly_the_wx_data_values(
    gen: ModuleType,
    layout: str,
    wx_folder: Path,
    ghcn: dict[str, Path],
    read_back: dict[str, Values],
) -> None:
    """So the expected statistics are wx_data's with the flagged values made missing."""
    manifest = gen.Manifest.read(ghcn[layout] / "manifest.json")
    flagged = manifest.flagged_keys()
    expected = wx_values(wx_folder)
    core = {k: v[0] for k, v in read_back[layout].items() if k[2] in CORE}
    assert core.keys() == expected.keys()  # a -9999 in wx_data is no value, nothing else is
    assert {k: v for k, v in core.items() if k not in flagged} == {
        k: v for k, v in expected.items() if k not in flagged
    }
    for value in manifest.flagged:
        assert value.original == expected[value.station_id, value.date, value.element]


def test_csv_and_dly_of_one_seed_hold_the_same_values(read_back: dict[str, Values]) -> None:
    assert read_back["csv"] == read_back["csv.gz"] == read_back["dly"]
    assert len(read_back["csv"]) > 50_000


@pytest.mark.parametrize("layout", ["csv", "dly"])
def test_manifest_counts_are_the_files_counts(
    gen: ModuleType, layout: str, ghcn: dict[str, Path], read_back: dict[str, Values]
) -> None:
    manifest = gen.Manifest.read(ghcn[layout] / "manifest.json")
    values = read_back[layout]
    elements = Counter(element for _, _, element in values)
    assert manifest.values == len(values)
    assert manifest.core_values == {e: n for e, n in elements.items() if e in CORE}
    assert manifest.other_by_element == {e: n for e, n in elements.items() if e not in CORE}
    assert manifest.other_values == sum(manifest.other_by_element.values())
    assert manifest.q_flags == dict(Counter(q for _, _, q, _ in values.values() if q))
    m_flags = Counter(f"{key[2]}:{m}" for key, (_, m, _, _) in values.items() if m)
    assert manifest.m_flags == dict(m_flags)
    paths = sorted(ghcn[layout].glob(f"*.{layout}"))
    assert manifest.files == len(paths)
    assert manifest.size_bytes == sum(p.stat().st_size for p in paths)
    text_lines = sum(read_text(p).count("\n") for p in paths)
    assert manifest.lines == text_lines - manifest.header_files


def test_the_noise_real_files_have_is_there(gen: ModuleType, ghcn: dict[str, Path]) -> None:
    manifest = gen.Manifest.read(ghcn["csv"] / "manifest.json")
    core = sum(manifest.core_values.values())
    assert 0.6 < manifest.other_values / core < 1.4  # about as many other values as core
    assert {"SNOW", "SNWD"} <= manifest.other_by_element.keys()
    assert manifest.m_flags["PRCP:T"] > 100
    assert manifest.m_flags.get("PRCP:P", 0) > 0
    assert manifest.implausible_flagged > 0
    assert len(manifest.q_flags) >= 6  # several letters, not one
    rows_by_file = {p.name: csv_rows(p) for p in ghcn["csv"].glob("*.csv")}
    obs_times = {name: {r["obs_time"] for r in rows} for name, rows in rows_by_file.items()}
    assert any(times == {""} for times in obs_times.values())  # blank at some stations
    assert any("" not in times for times in obs_times.values())  # set at others
    headers = {p.read_text().startswith(HEADER + "\n") for p in ghcn["csv"].glob("*.csv")}
    assert headers == {True, False}
    assert manifest.header_files == sum(
        p.read_text().startswith(HEADER) for p in ghcn["csv"].glob("*.csv")
    )
    zero_prcp = [r for rows in rows_by_file.values() for r in rows if r["element"] == "PRCP"]
    assert all(r["value"] == "0" for r in zero_prcp if r["m"] == "T" and not r["q"])


def test_lines_are_by_date_then_a_fixed_element_order_that_is_not_alphabetical(
    gen: ModuleType, ghcn: dict[str, Path]
) -> None:
    rank = {element: i for i, element in enumerate(gen.ELEMENT_ORDER)}
    assert rank["PRCP"] == 0
    unsorted_days = 0
    for path in ghcn["csv"].glob("*.csv"):
        rows = csv_rows(path)
        assert [r["date"] for r in rows] == sorted(r["date"] for r in rows), path.name
        for _, day in itertools.groupby(rows, key=lambda r: r["date"]):
            elements = [r["element"] for r in day]
            assert [rank[e] for e in elements] == sorted(rank[e] for e in elements)
            unsorted_days += elements != sorted(elements)
    assert unsorted_days > 0


def test_qc_rate_is_the_share_of_flagged_core_values(
    gen: ModuleType, wx_folder: Path, tmp_path: Path
) -> None:
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(next(iter(sorted(wx_folder.glob("*.txt")))), one)
    manifest = generate(gen, one, tmp_path / "5", "csv", qc_rate=0.05)
    core = sum(manifest.core_values.values())
    assert len(manifest.flagged) / core == pytest.approx(0.05, abs=0.005)
    assert generate(gen, one, tmp_path / "0", "csv", qc_rate=0).flagged == []


def test_an_unknown_layout_is_refused(gen: ModuleType, wx_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"csv, csv\.gz, dly"):
        generate(gen, wx_folder, tmp_path, "tsv")


# --- By-year files -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def by_year(gen: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    path = tmp_path_factory.mktemp("by-year") / f"{BY_YEAR}.csv"
    lines = gen.synthetic_by_year(path, year=BY_YEAR, stations=BY_YEAR_STATIONS, seed=SEED)
    return path, lines


def year_dates(year: int) -> list[str]:
    first = dt.date(year, 1, 1)
    return [(first + dt.timedelta(days=n)).strftime("%Y%m%d") for n in range(366)][
        : 366 if calendar.isleap(year) else 365
    ]


def test_by_year_returns_its_line_count(gen: ModuleType, by_year: tuple[Path, int]) -> None:
    path, lines = by_year
    assert lines == read_text(path).count("\n") == len(csv_rows(path))
    assert gen.Manifest.read(path.with_name(path.name + ".manifest.json")).lines == lines


def test_by_year_has_every_station_on_every_day(by_year: tuple[Path, int]) -> None:
    """As documented: every station has a TMAX, TMIN or PRCP value on every day of the
    year; CoCoRaHS (US1) stations report precipitation only."""
    rows = csv_rows(by_year[0])
    stations = {r["id"] for r in rows}
    assert len(stations) == BY_YEAR_STATIONS
    for station in stations:
        assert re.fullmatch(r"USC00[0-9]{6}|US1[A-Z]{4}[0-9]{4}", station)
    real = {p.stem for p in DATA_DIR.glob("*.txt")}
    assert stations.isdisjoint(real)
    core_days = {(r["id"], r["date"]) for r in rows if r["element"] in CORE}
    assert core_days == set(itertools.product(stations, year_dates(BY_YEAR)))
    assert len(year_dates(BY_YEAR)) == 366
    us1_elements = {r["element"] for r in rows if r["id"].startswith("US1")}
    assert not us1_elements & {"TMAX", "TMIN", "TOBS", "TAVG"}


def test_by_year_values_are_plausible_unless_flagged(by_year: tuple[Path, int]) -> None:
    rows = [r for r in csv_rows(by_year[0]) if not r["q"]]
    tmax = {(r["id"], r["date"]): int(r["value"]) for r in rows if r["element"] == "TMAX"}
    tmin = {(r["id"], r["date"]): int(r["value"]) for r in rows if r["element"] == "TMIN"}
    assert all(-500 <= v <= 500 for v in [*tmax.values(), *tmin.values()])
    assert all(tmax[k] >= tmin[k] for k in tmax.keys() & tmin.keys())
    prcp = [int(r["value"]) for r in rows if r["element"] == "PRCP"]
    assert all(0 <= v <= 5000 for v in prcp)
    assert 0.5 < prcp.count(0) / len(prcp) < 0.85  # most days dry, not all


def test_by_year_lines_are_in_no_particular_order(by_year: tuple[Path, int]) -> None:
    rows = csv_rows(by_year[0])
    keys = [(r["id"], r["date"]) for r in rows]
    assert keys != sorted(keys)
    dates = [r["date"] for r in rows]
    assert dates != sorted(dates)
    # A station's lines are spread over the file, not grouped: consecutive lines are mostly
    # of different stations, and every station has lines in the first tenth of the file.
    changes = sum(a != b for (a, _), (b, _) in itertools.pairwise(keys))
    assert changes / len(keys) > 0.8
    assert {r["id"] for r in rows[: len(rows) // 10]} == {r["id"] for r in rows}


@pytest.mark.parametrize("order", ["station", "date"])
def test_by_year_orders_hold_the_same_lines(
    gen: ModuleType, order: str, by_year: tuple[Path, int], tmp_path: Path
) -> None:
    path = tmp_path / f"{BY_YEAR}.csv"
    gen.synthetic_by_year(path, year=BY_YEAR, stations=BY_YEAR_STATIONS, seed=SEED, order=order)
    lines = read_text(path).splitlines()
    assert Counter(lines) == Counter(read_text(by_year[0]).splitlines())
    keys = [(line[:11], line[12:20]) for line in lines]  # station, date
    if order == "date":
        keys = [(date, station) for station, date in keys]
    assert keys == sorted(keys)


def test_the_year_so_far_file_of_the_next_night_adds_one_day_for_every_station(
    gen: ModuleType, tmp_path: Path
) -> None:
    """The nightly increment of bench/bench_scale.py: given stations, days 1 to N, then
    1 to N + 1; the core values of the first N days are the same in both files."""
    ids = ["SYN00000001", "SYN00000002", "US1ILCK0001"]
    nights = {}
    for last_day in (40, 41):
        path = tmp_path / f"day{last_day}" / f"{BY_YEAR}.csv.gz"
        gen.synthetic_by_year(
            path, year=BY_YEAR, stations=0, seed=SEED, gz=True, ids=ids, last_day=last_day
        )
        nights[last_day] = {
            (r["id"], r["date"], r["element"]): (r["value"], r["q"])
            for r in csv_rows(path)
            if r["element"] in CORE
        }
    dates = year_dates(BY_YEAR)
    assert {d for _, d, _ in nights[40]} == set(dates[:40])
    assert {s for s, _, _ in nights[41]} == set(ids)
    new = {k: v for k, v in nights[41].items() if k not in nights[40]}
    assert {(s, d) for s, d, _ in new} == {(s, dates[40]) for s in ids}
    assert {k: nights[41][k] for k in nights[40]} == nights[40]
    with pytest.raises(ValueError, match="last_day 367"):
        gen.synthetic_by_year(
            tmp_path / "x.csv", year=BY_YEAR, stations=0, seed=SEED, ids=ids, last_day=367
        )


def test_by_year_is_the_same_for_a_seed_and_gzips_the_same_lines(
    gen: ModuleType, by_year: tuple[Path, int], tmp_path: Path
) -> None:
    plain = tmp_path / f"{BY_YEAR}.csv"
    gen.synthetic_by_year(plain, year=BY_YEAR, stations=BY_YEAR_STATIONS, seed=SEED)
    assert plain.read_bytes() == by_year[0].read_bytes()
    zipped = tmp_path / f"{BY_YEAR}.csv.gz"
    lines = gen.synthetic_by_year(
        zipped, year=BY_YEAR, stations=BY_YEAR_STATIONS, seed=SEED, gz=True
    )
    assert lines == by_year[1]
    assert read_text(zipped) == read_text(by_year[0])
    assert not list(tmp_path.glob("*.part"))
    assert not list(tmp_path.glob(".gen-ghcn-*"))  # the shuffle's scratch folder is gone
    with pytest.raises(ValueError, match=r"\.csv\.gz"):
        gen.synthetic_by_year(tmp_path / "x.csv", year=BY_YEAR, stations=1, seed=1, gz=True)


def test_by_year_manifest_lists_exactly_the_q_flagged_values(
    gen: ModuleType, tmp_path: Path
) -> None:
    path = tmp_path / f"{BY_YEAR}.csv"
    gen.synthetic_by_year(path, year=BY_YEAR, stations=4, seed=SEED, qc_rate=0.02)
    manifest = gen.Manifest.read(path.with_name(path.name + ".manifest.json"))
    assert len(manifest.flagged) > 50
    assert flagged_in(csv_values(path)) == flagged_in_manifest(manifest)


def test_fewer_stations_are_a_prefix_of_more(gen: ModuleType) -> None:
    assert gen.station_ids(5, SEED) == gen.station_ids(50, SEED)[:5]
    assert len(set(gen.station_ids(2000, SEED))) == 2000


# --- Changed copies ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_changed_copy_changes_exactly_n_values_and_nothing_else(
    gen: ModuleType, by_year: tuple[Path, int], tmp_path: Path, suffix: str
) -> None:
    src = by_year[0]
    if suffix == ".csv.gz":
        src = tmp_path / f"src{suffix}"
        src.write_bytes(gzip.compress(by_year[0].read_bytes()))
    dst = tmp_path / f"dst{suffix}"
    made = gen.changed_copy(src, dst, changes=25, seed=3)
    before, after = read_text(src).split("\n"), read_text(dst).split("\n")
    assert len(before) == len(after)
    diff = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert len(diff) == len(made) == 25
    for (old_line, new_line), change in zip(diff, made, strict=True):
        old, new = old_line.split(","), new_line.split(",")
        assert old[:3] + old[4:] == new[:3] + new[4:]  # only DATA_VALUE differs
        station, date, element, old_value, new_value = change
        assert (station, date, element) == tuple(old[:3])
        assert (old_value, new_value) == (int(old[3]), int(new[3]))
        assert element in CORE
        assert old[4] == old[5] == ""  # no M or Q flag
        assert new_value != old_value
        low, high = (0, 5000) if element == "PRCP" else (-600, 550)
        assert low <= new_value <= high
    again = gen.changed_copy(src, tmp_path / f"again{suffix}", changes=25, seed=3)
    assert again == made


def test_changed_copy_refuses_more_changes_than_values(
    gen: ModuleType, tmp_path: Path, wx_folder: Path
) -> None:
    path = tmp_path / f"{BY_YEAR}.csv"
    gen.synthetic_by_year(path, year=BY_YEAR, stations=1, seed=SEED)
    with pytest.raises(ValueError, match="can change"):
        gen.changed_copy(path, tmp_path / "copy.csv", changes=10**6, seed=1)


# --- Command line --------------------------------------------------------------------------


def run_cli(*args: str) -> None:
    subprocess.run([sys.executable, str(GENERATOR), *args], check=True, capture_output=True)


def test_command_line_writes_what_the_functions_write(
    gen: ModuleType, wx_folder: Path, ghcn: dict[str, Path], tmp_path: Path
) -> None:
    run_cli(
        *("from-wx", str(wx_folder), str(tmp_path / "wx"), "--layout", "dly"),
        *("--seed", str(SEED), "--qc-rate", str(QC_RATE)),
    )
    for path in ghcn["dly"].glob("*.dly"):
        assert (tmp_path / "wx" / path.name).read_bytes() == path.read_bytes()
    year = tmp_path / "year" / "2023.csv.gz"
    run_cli("by-year", str(year), "--year", "2023", "--stations", "3", "--seed", "7")
    expected = tmp_path / "2023.csv.gz"
    gen.synthetic_by_year(expected, year=2023, stations=3, seed=7, gz=True)
    assert year.read_bytes() == expected.read_bytes()
    copy = tmp_path / "copy" / "2023.csv.gz"
    run_cli("change", str(year), str(copy), "--changes", "5", "--seed", "2")
    record = json.loads((copy.parent / "2023.csv.gz.changes.json").read_text())
    assert [tuple(c) for c in record] == gen.changed_copy(
        year, tmp_path / "c.csv.gz", changes=5, seed=2
    )
