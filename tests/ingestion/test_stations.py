"""NOAA's station list (ghcnd-stations.txt): parsing, loading into ``stations``, the ledger,
S3 objects and ``wxhub stations``.

The files are written here from NOAA's published format (``tests/ghcn_files.py``), never
downloaded. Every database test runs on SQLite and on MariaDB; S3 is moto's, with every
GetObject counted.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import Engine, func, select, text
from sqlalchemy.engine import URL

from tests.conftest import noaa_line
from tests.ghcn_files import stations_file, stations_line
from tests.ingestion.test_s3 import BUCKET, Bucket
from wxhub import aws as wxhub_aws
from wxhub.db.engine import make_engine
from wxhub.db.lock import job_lock
from wxhub.db.schema import data_version, ingested_files, ingestion_rejects, job_runs, stations
from wxhub.ingestion import ledger, stations_loader
from wxhub.ingestion.rows import Reject
from wxhub.ingestion.sources import LocalFile, SourceError, SourceFile, resolve_file
from wxhub.ingestion.stations import (
    LEDGER_SUBJECT,
    StationListParser,
    StationRow,
    is_station_list,
    iter_lines,
)
from wxhub.ingestion.stations_loader import (
    StationListFailed,
    StationLoadStats,
    load_station_metadata,
)

CENTRAL_PARK = stations_line(
    "USW00094728", 40.7789, -73.9692, 39.6, "NY", "NEW YORK CNTRL PK TWR", "", "HCN", "72506"
)
MELBOURNE = stations_line(
    "ASN00086071", -37.8075, 144.9700, 31.2, "", "MELBOURNE REGIONAL OFFICE", "GSN", "", "94868"
)
ST_JOHNS = stations_line("ACW00011604", 17.1167, -61.7833, 10.1, "", "ST JOHNS COOLIDGE FLD")
# No elevation, a name with '#' and '/', and a CRN flag without a WMO id.
ANNEX = stations_line(
    "USW00003047", 31.7831, -103.2014, -999.9, "TX", "PECOS 3 #2 / ANNEX", "", "CRN"
)
# Every flag at once, and the corners of the globe.
POLE = stations_line(
    "AYM00089009", -90.0, -180.0, 2835.0, "", "AMUNDSEN-SCOTT", "GSN", "HCN", "89009"
)


def parse(data: bytes) -> tuple[list[StationRow], list[Reject]]:
    parser = StationListParser()
    rows = list(parser.rows(iter_lines(data)))
    return rows, parser.rejects


# --- the format ---------------------------------------------------------------------------------


def test_stations_line_writes_the_columns_noaa_publishes() -> None:
    # A line of NOAA's own ghcnd-stations.txt, character for character.
    published = (
        "USW00094728  40.7789  -73.9692   39.6 NY NEW YORK CNTRL PK TWR              HCN 72506"
    )

    written = stations_line(
        "USW00094728", 40.7789, -73.9692, 39.6, "NY", "NEW YORK CNTRL PK TWR", "", "HCN", "72506"
    )

    assert written == published
    assert (published[0:11], published[12:20], published[21:30]) == (
        "USW00094728",
        " 40.7789",
        " -73.9692",
    )
    assert (published[31:37], published[38:40], published[76:79], published[80:85]) == (
        "  39.6",
        "NY",
        "HCN",
        "72506",
    )


def test_every_field_is_parsed_blank_ones_as_none() -> None:
    rows, rejects = parse(stations_file([CENTRAL_PARK, MELBOURNE, ST_JOHNS, ANNEX, POLE]))

    assert rejects == []
    assert rows == [
        StationRow(
            "USW00094728",
            "US",
            Decimal("40.7789"),
            Decimal("-73.9692"),
            Decimal("39.6"),
            "NY",
            "NEW YORK CNTRL PK TWR",
            None,
            "HCN",
            "72506",
        ),
        StationRow(
            "ASN00086071",
            "AS",
            Decimal("-37.8075"),
            Decimal("144.9700"),
            Decimal("31.2"),
            None,
            "MELBOURNE REGIONAL OFFICE",
            "GSN",
            None,
            "94868",
        ),
        StationRow(
            "ACW00011604",
            "AC",
            Decimal("17.1167"),
            Decimal("-61.7833"),
            Decimal("10.1"),
            None,
            "ST JOHNS COOLIDGE FLD",
            None,
            None,
            None,
        ),
        StationRow(
            "USW00003047",
            "US",
            Decimal("31.7831"),
            Decimal("-103.2014"),
            None,
            "TX",
            "PECOS 3 #2 / ANNEX",
            None,
            "CRN",
            None,
        ),
        StationRow(
            "AYM00089009",
            "AY",
            Decimal("-90.0000"),
            Decimal("-180.0000"),
            Decimal("2835.0"),
            None,
            "AMUNDSEN-SCOTT",
            "GSN",
            "HCN",
            "89009",
        ),
    ]


def test_lines_trimmed_after_their_last_field_parse_like_full_width_ones() -> None:
    full = stations_line("USC00000001", 1.0, 2.0, 3.0, "AL", "A")
    # NOAA trims the blanks after the name: the line ends at column 42 here.
    assert len(full) == 42
    padded = full.ljust(85)
    after_gsn = stations_line("USC00000002", 1.0, 2.0, 3.0, "", "B", "GSN")
    after_hcn = stations_line("USC00000003", 1.0, 2.0, 3.0, "", "C", "", "HCN")
    assert (len(after_gsn), len(after_hcn)) == (75, 79)

    rows, rejects = parse(stations_file([padded, after_gsn, after_hcn]))
    (trimmed,), _ = parse(stations_file([full]))

    assert rejects == []
    assert rows[0] == trimmed
    assert (trimmed.state, trimmed.name, trimmed.gsn_flag, trimmed.wmo_id) == (
        "AL",
        "A",
        None,
        None,
    )
    assert (rows[1].gsn_flag, rows[1].hcn_crn_flag) == ("GSN", None)
    assert (rows[2].gsn_flag, rows[2].hcn_crn_flag) == (None, "HCN")


def test_windows_line_endings_a_byte_order_mark_and_blank_lines_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + stations_file([CENTRAL_PARK, "", "   ", ST_JOHNS], newline="\r\n")

    parser = StationListParser()
    rows = list(parser.rows(iter_lines(data)))

    assert [r.station_id for r in rows] == ["USW00094728", "ACW00011604"]
    assert rows[0].wmo_id == "72506"
    assert (parser.rejects, parser.records_read) == ([], 2)


def variant(**fields: Any) -> str:
    """A valid station line with some of its fields replaced."""
    values = {
        "station_id": "USC00000001",
        "latitude": 0.0,
        "longitude": 0.0,
        "elevation_m": 1.0,
        "name": "X",
    }
    return stations_line(**(values | fields))


BAD_LINES = [
    pytest.param(variant(latitude=90.0001), "latitude 90.0001 is outside -90..90", id="lat>90"),
    pytest.param(variant(latitude=-90.5), "latitude -90.5000 is outside -90..90", id="lat<-90"),
    pytest.param(variant(latitude="4O.7789"), "latitude '4O.7789' is not a number", id="lat-O"),
    pytest.param(variant(latitude=""), "latitude '(blank)' is not a number", id="lat-blank"),
    pytest.param(
        variant(latitude="40.77891"), "latitude 40.77891 has more than 4 decimals", id="lat-5dp"
    ),
    pytest.param(
        variant(longitude=180.0001), "longitude 180.0001 is outside -180..180", id="lon>180"
    ),
    pytest.param(variant(longitude="1e2"), "longitude '1e2' is not a number", id="lon-1e2"),
    pytest.param(variant(elevation_m="high"), "elevation 'high' is not a number", id="elev-text"),
    pytest.param(
        variant(elevation_m=9999.9), "elevation 9999.9 m is outside -500..9000", id="elev-high"
    ),
    pytest.param(
        variant(elevation_m="10.25"), "elevation 10.25 has more than 1 decimals", id="elev-2dp"
    ),
    pytest.param(
        variant(station_id="usc00000001"),
        "station id 'usc00000001' is not 2 capital letters and 9 capitals or digits",
        id="id-lower-case",
    ),
    pytest.param(variant(station_id="US-00000001"), "station id 'US-00000001'", id="id-dash"),
    pytest.param(variant(station_id="1SC00000001"), "station id '1SC00000001'", id="id-digit"),
    pytest.param(variant(state="N1"), "state 'N1' is not two capital letters or blank", id="state"),
    pytest.param(
        variant(name="", gsn_flag="GSN"), "the name (columns 42-71) is blank", id="no-name"
    ),
    pytest.param(variant(gsn_flag="WMO"), "GSN flag 'WMO' is not GSN or blank", id="gsn"),
    pytest.param(
        variant(hcn_crn_flag="GSN"), "HCN/CRN flag 'GSN' is not HCN or CRN or blank", id="hcn"
    ),
    pytest.param(
        variant(hcn_crn_flag="HC"), "HCN/CRN flag 'HC' is not HCN or CRN", id="hcn-cut-short"
    ),
    pytest.param(variant(wmo_id="7250A"), "WMO id '7250A' is not 5 digits or blank", id="wmo"),
    pytest.param(variant(wmo_id="725"), "WMO id '725' is not 5 digits", id="wmo-cut-short"),
    pytest.param(
        "USC00000001  40.7789  -73.9692   39.6 NY",
        "line is 40 characters long: too short for a station",
        id="too-short",
    ),
    pytest.param(
        variant(wmo_id="72506") + "9",
        "line is 86 characters long: longer than a station line",
        id="too-long",
    ),
    pytest.param(
        variant(station_id="USC000000012"),
        "column 12 is '2', not a space: the fields are not in their columns",
        id="fields-moved",
    ),
    pytest.param("USC00000001\t" + variant()[12:], "column 12 is '\\t', not a space", id="tab"),
]


@pytest.mark.parametrize(("line", "reason"), BAD_LINES)
def test_a_bad_line_is_rejected_with_its_line_number_and_reason(line: str, reason: str) -> None:
    rows, rejects = parse(stations_file([CENTRAL_PARK, line, ST_JOHNS]))

    assert [r.station_id for r in rows] == ["USW00094728", "ACW00011604"]
    (reject,) = rejects
    assert (reject.line_no, reject.line_text) == (2, line)
    assert reason in reject.reason


def test_a_line_with_a_byte_that_is_not_ascii_is_rejected_naming_its_column() -> None:
    line = stations_line("USC00000001", 0.0, 0.0, 1.0, "", "SAO PAULO").encode()
    data = CENTRAL_PARK.encode() + b"\n" + line.replace(b"SAO", b"S\xc3\x83O") + b"\n"

    rows, rejects = parse(data)

    assert [r.station_id for r in rows] == ["USW00094728"]
    (reject,) = rejects
    assert reject.line_no == 2
    assert reject.reason.startswith("column 43 holds a byte that is not ASCII")


def test_a_station_listed_twice_is_rejected_naming_the_line_it_was_first_on() -> None:
    again = stations_line("USW00094728", 40.7789, -73.9692, 39.6, "NY", "ANOTHER NAME")

    rows, rejects = parse(stations_file([CENTRAL_PARK, ST_JOHNS, again]))

    assert [(r.station_id, r.name) for r in rows] == [
        ("USW00094728", "NEW YORK CNTRL PK TWR"),
        ("ACW00011604", "ST JOHNS COOLIDGE FLD"),
    ]
    assert rejects == [
        Reject(
            3,
            "station USW00094728 is listed again (first on line 1); this line is ignored",
            again,
        )
    ]


def test_a_station_whose_first_line_was_rejected_loads_from_its_next_line() -> None:
    bad = stations_line("USW00094728", 91.0, -73.9692, 39.6, "NY", "NEW YORK CNTRL PK TWR")

    rows, rejects = parse(stations_file([bad, CENTRAL_PARK]))

    assert [r.latitude for r in rows] == [Decimal("40.7789")]
    assert [r.line_no for r in rejects] == [1]


def test_lines_are_parsed_as_they_are_read_not_all_at_once() -> None:
    pulled: list[int] = []

    def lines() -> Iterator[bytes]:
        for n in range(1, 1001):
            pulled.append(n)
            yield stations_line(f"USC{n:08d}", 0.0, 0.0, 1.0, "", "X").encode() + b"\n"

    rows = StationListParser().rows(lines())
    first = next(rows)

    assert first.station_id == "USC00000001"
    assert pulled == [1]


def test_the_parser_imports_without_sqlalchemy() -> None:
    code = (
        "import sys, wxhub.ingestion.stations\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sqlalchemy'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/data/ghcnd-stations.txt", True),
        ("s3://noaa/ghcnd-stations.txt.gz", True),
        ("ghcnd-stations.txt", True),
        ("/data/ghcnd-stations.csv", False),
        ("/data/USW00094728.txt", False),
        ("/data/old-ghcnd-stations.txt", False),
    ],
)
def test_the_station_list_is_known_by_its_file_name(uri: str, expected: bool) -> None:
    assert is_station_list(uri) is expected


# --- loading into the database ------------------------------------------------------------------


def write(path: Path, lines: list[str], *, gz: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = stations_file(lines)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def load(engine: Engine, source: Path | SourceFile, *, force: bool = False) -> StationLoadStats:
    """Load as a command does: within a run recorded in ``job_runs``."""
    run_id, _ = ledger.start_run(engine, "stations")
    if isinstance(source, Path):
        source = LocalFile(source, LEDGER_SUBJECT)
    return load_station_metadata(engine, source, run_id=run_id, force=force)


def stored(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as conn:
        rows = conn.execute(select(stations).order_by(stations.c.station_id))
        return {row.station_id: tuple(row)[1:] for row in rows}


def version(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(data_version.c.version)).scalar_one())


def ledger_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(ingested_files).order_by(ingested_files.c.id)))


def counts(stats: StationLoadStats) -> tuple[int, int, int, int]:
    return stats.inserted, stats.updated, stats.unchanged, stats.rejected


def test_a_first_load_stores_every_station_exactly(engine: Engine, tmp_path: Path) -> None:
    before = version(engine)
    path = write(tmp_path / "ghcnd-stations.txt", [CENTRAL_PARK, MELBOURNE, ANNEX, POLE])

    stats = load(engine, path)

    assert (counts(stats), stats.records_read, stats.skipped) == ((4, 0, 0, 0), 4, False)
    assert stored(engine) == {
        "ASN00086071": (
            "AS",
            Decimal("-37.8075"),
            Decimal("144.9700"),
            Decimal("31.2"),
            None,
            "MELBOURNE REGIONAL OFFICE",
            "GSN",
            None,
            "94868",
        ),
        "AYM00089009": (
            "AY",
            Decimal("-90.0000"),
            Decimal("-180.0000"),
            Decimal("2835.0"),
            None,
            "AMUNDSEN-SCOTT",
            "GSN",
            "HCN",
            "89009",
        ),
        "USW00003047": (
            "US",
            Decimal("31.7831"),
            Decimal("-103.2014"),
            None,
            "TX",
            "PECOS 3 #2 / ANNEX",
            None,
            "CRN",
            None,
        ),
        "USW00094728": (
            "US",
            Decimal("40.7789"),
            Decimal("-73.9692"),
            Decimal("39.6"),
            "NY",
            "NEW YORK CNTRL PK TWR",
            None,
            "HCN",
            "72506",
        ),
    }
    assert version(engine) == before + 1
    (entry,) = ledger_rows(engine)
    assert (entry.station_id, entry.content_sha256) == (LEDGER_SUBJECT, stats.content_sha256)
    assert (entry.source_uri, entry.size_bytes) == (str(path), path.stat().st_size)
    assert (entry.records_read, entry.records_inserted, entry.records_rejected) == (4, 4, 0)


def test_a_new_list_is_counted_exactly_and_keeps_the_stations_it_leaves_out(
    engine: Engine, tmp_path: Path
) -> None:
    first = [CENTRAL_PARK, MELBOURNE, ST_JOHNS, ANNEX, POLE]
    load(engine, write(tmp_path / "1" / "ghcnd-stations.txt", first))
    second = [
        CENTRAL_PARK,  # unchanged
        # The name corrected in case only: a change on every backend.
        MELBOURNE.replace("MELBOURNE REGIONAL OFFICE", "Melbourne Regional Office"),
        # The last decimal of the latitude.
        stations_line("ACW00011604", 17.1168, -61.7833, 10.1, "", "ST JOHNS COOLIDGE FLD"),
        # The elevation now known, the CRN flag gone.
        stations_line("USW00003047", 31.7831, -103.2014, 885.4, "TX", "PECOS 3 #2 / ANNEX"),
        stations_line("GME00127786", 50.05, 8.6, 112.0, "", "FRANKFURT MAIN", "GSN"),  # new
        # POLE is left out.
    ]

    stats = load(engine, write(tmp_path / "2" / "ghcnd-stations.txt", second))

    assert counts(stats) == (1, 3, 1, 0)
    now = stored(engine)
    assert sorted(now) == [
        "ACW00011604",
        "ASN00086071",
        "AYM00089009",  # kept
        "GME00127786",
        "USW00003047",
        "USW00094728",
    ]
    assert now["ASN00086071"][5] == "Melbourne Regional Office"
    assert now["ACW00011604"][1] == Decimal("17.1168")
    assert (now["USW00003047"][3], now["USW00003047"][7]) == (Decimal("885.4"), None)
    assert now["GME00127786"] == (
        "GM",
        Decimal("50.0500"),
        Decimal("8.6000"),
        Decimal("112.0"),
        None,
        "FRANKFURT MAIN",
        "GSN",
        None,
        None,
    )


@pytest.fixture
def station_writes(engine: Engine) -> Callable[[], set[str]]:
    """Triggers that note every station row the database is asked to insert or update (an
    upsert that meets an existing row fires the insert trigger too, on both backends)."""
    statements = ["CREATE TABLE station_writes (station_id VARCHAR(20))"]
    for when in ("INSERT", "UPDATE"):
        action = "INSERT INTO station_writes VALUES (NEW.station_id)"
        if engine.dialect.name == "sqlite":
            body = f"BEGIN {action}; END"
        else:
            body = f"FOR EACH ROW {action}"
        statements.append(f"CREATE TRIGGER note_{when.lower()} BEFORE {when} ON stations {body}")
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))

    def written() -> set[str]:
        with engine.begin() as conn:
            ids = set(conn.execute(text("SELECT station_id FROM station_writes")).scalars())
            conn.execute(text("DELETE FROM station_writes"))
        return ids

    return written


def test_unchanged_stations_are_not_written_again(
    engine: Engine, tmp_path: Path, station_writes: Callable[[], set[str]]
) -> None:
    load(engine, write(tmp_path / "1" / "ghcnd-stations.txt", [CENTRAL_PARK, MELBOURNE, ST_JOHNS]))
    assert station_writes() == {"USW00094728", "ASN00086071", "ACW00011604"}
    renamed = stations_line("ACW00011604", 17.1167, -61.7833, 10.1, "", "ST JOHNS V C BIRD INTL")

    stats = load(
        engine,
        write(tmp_path / "2" / "ghcnd-stations.txt", [CENTRAL_PARK, MELBOURNE, renamed, POLE]),
    )

    assert counts(stats) == (1, 1, 2, 0)
    assert station_writes() == {"ACW00011604", "AYM00089009"}


def test_the_same_content_again_is_skipped_by_the_ledger_without_a_write(
    engine: Engine, tmp_path: Path
) -> None:
    load(engine, write(tmp_path / "1" / "ghcnd-stations.txt", [CENTRAL_PARK, MELBOURNE]))
    before = (stored(engine), version(engine), ledger_rows(engine))

    # The same lines elsewhere, gzip-compressed: the ledger knows the content, not the path.
    again = write(tmp_path / "2" / "ghcnd-stations.txt.gz", [CENTRAL_PARK, MELBOURNE], gz=True)
    stats = load(engine, again)

    assert (stats.skipped, stats.unread, stats.records_read) == (True, False, 0)
    assert counts(stats) == (0, 0, 0, 0)
    assert (stored(engine), version(engine), ledger_rows(engine)) == before


def test_force_reads_it_again_and_an_unchanged_list_bumps_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = write(tmp_path / "ghcnd-stations.txt", [CENTRAL_PARK, MELBOURNE, "bad line"])
    load(engine, path)
    before = (stored(engine), version(engine))

    stats = load(engine, path, force=True)

    assert (stats.skipped, counts(stats)) == (False, (0, 0, 2, 1))
    assert (stored(engine), version(engine)) == before
    (entry,) = ledger_rows(engine)  # the entry is updated, not doubled
    assert (entry.records_unchanged, entry.records_rejected) == (2, 1)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ingestion_rejects)).scalar() == 1


def test_the_data_version_is_bumped_once_by_a_load_that_changes_anything(
    engine: Engine, tmp_path: Path
) -> None:
    start = version(engine)
    load(engine, write(tmp_path / "1" / "ghcnd-stations.txt", [CENTRAL_PARK]))
    assert version(engine) == start + 1

    load(engine, write(tmp_path / "2" / "ghcnd-stations.txt", [CENTRAL_PARK, ST_JOHNS, MELBOURNE]))
    assert version(engine) == start + 2  # two inserts, one bump

    load(engine, write(tmp_path / "3" / "ghcnd-stations.txt", [MELBOURNE, CENTRAL_PARK]))
    assert version(engine) == start + 2  # reordered, one left out: nothing changed

    higher = CENTRAL_PARK.replace("  39.6 ", "  39.7 ")
    load(engine, write(tmp_path / "4" / "ghcnd-stations.txt", [higher]))
    assert version(engine) == start + 3  # one update


def test_rejects_are_stored_with_line_numbers_and_the_rest_loads(
    engine: Engine, tmp_path: Path
) -> None:
    bad_latitude = stations_line("USC00000001", 95.0, 0.0, 1.0, "", "X")
    lines = [CENTRAL_PARK, bad_latitude, ST_JOHNS, "too short", CENTRAL_PARK]

    stats = load(engine, write(tmp_path / "ghcnd-stations.txt", lines))

    assert counts(stats) == (2, 0, 0, 3)
    assert [(r.line_no, r.reason[:40]) for r in stats.rejects] == [
        (2, "latitude 95.0000 is outside -90..90"),
        (4, "line is 9 characters long: too short for"),
        (5, "station USW00094728 is listed again (fir"),
    ]
    with engine.connect() as conn:
        stored_rejects = conn.execute(
            select(
                ingestion_rejects.c.line_no,
                ingestion_rejects.c.line_text,
                ingested_files.c.station_id,
            )
            .join(ingested_files, ingested_files.c.id == ingestion_rejects.c.file_id)
            .order_by(ingestion_rejects.c.line_no)
        ).all()
    assert [tuple(r) for r in stored_rejects] == [
        (2, bad_latitude, LEDGER_SUBJECT),
        (4, "too short", LEDGER_SUBJECT),
        (5, CENTRAL_PARK, LEDGER_SUBJECT),
    ]
    assert ledger_rows(engine)[0].records_rejected == 3


def test_batches_of_rows_add_up_to_the_whole_file(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stations_loader, "BATCH_ROWS", 2)
    lines = [stations_line(f"USC{n:08d}", n / 10, -n / 10, n, "", f"STATION {n}") for n in range(7)]

    stats = load(engine, write(tmp_path / "ghcnd-stations.txt", lines))

    assert counts(stats) == (7, 0, 0, 0)
    assert len(stored(engine)) == 7


def test_a_load_that_fails_part_way_leaves_nothing_behind(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "ghcnd-stations.txt", [CENTRAL_PARK, MELBOURNE])
    start = version(engine)

    def refuse(*_args: object, **_kwargs: object) -> int:
        raise RuntimeError("the ledger write fails")

    # After the stations were upserted and the version bumped, before the commit.
    with monkeypatch.context() as patched:
        patched.setattr(stations_loader.ledger, "record_file", refuse)
        with pytest.raises(RuntimeError, match="the ledger write fails"):
            load(engine, path)

    assert (stored(engine), version(engine), ledger_rows(engine)) == ({}, start, [])
    assert counts(load(engine, path)) == (2, 0, 0, 0)  # and the next load does it all


def test_a_file_with_no_station_line_fails_and_writes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = tmp_path / "ghcnd-stations.txt"
    path.write_text(
        noaa_line("20000101", 10, -20, 0) + "\n" + noaa_line("20000102", 1, 2, 3) + "\n"
    )

    with pytest.raises(StationListFailed) as failed:
        load(engine, path)

    assert str(failed.value).startswith(
        f"{path}: not a station list (ghcnd-stations.txt): none of its 2 lines is a station "
        "(line 1: line is 26 characters long"
    )
    assert (stored(engine), ledger_rows(engine)) == ({}, [])


def test_an_unreadable_file_fails_naming_it(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "ghcnd-stations.txt.gz"
    path.write_bytes(b"not gzip")

    with pytest.raises(
        StationListFailed, match=r"ghcnd-stations\.txt\.gz: cannot read: not a valid gzip"
    ):
        load(engine, path)

    assert ledger_rows(engine) == []


def test_an_empty_file_loads_nothing_and_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    start = version(engine)
    stats = load(engine, write(tmp_path / "ghcnd-stations.txt", []))

    assert (counts(stats), stats.skipped, version(engine)) == ((0, 0, 0, 0), False, start)


# --- S3 -------------------------------------------------------------------------------------------

KEY = "ghcnd/ghcnd-stations.txt"
URI = f"s3://{BUCKET}/{KEY}"


@pytest.fixture
def bucket(aws: None, monkeypatch: pytest.MonkeyPatch) -> Bucket:
    """An empty moto bucket; every S3 client wxhub asks for is this counting one."""
    counted = Bucket()
    monkeypatch.setattr(wxhub_aws, "client", lambda *_args, **_kwargs: counted.client)
    return counted


def test_an_s3_object_is_loaded_then_skipped_unread_while_unchanged(
    engine: Engine, bucket: Bucket
) -> None:
    bucket.put(KEY, [CENTRAL_PARK, MELBOURNE])

    first = load(engine, resolve_file(URI, LEDGER_SUBJECT))
    second = load(engine, resolve_file(URI, LEDGER_SUBJECT))

    assert (counts(first), bucket.gets()) == ((2, 0, 0, 0), 1)
    assert (second.skipped, second.unread, second.content_sha256) == (
        True,
        True,
        first.content_sha256,
    )
    assert bucket.gets() == 1  # no GetObject for the unchanged object
    (entry,) = ledger_rows(engine)
    assert entry.source_uri == URI


def test_an_s3_object_with_a_new_etag_and_known_content_is_read_once_then_skipped_unread(
    engine: Engine, bucket: Bucket
) -> None:
    bucket.put(f"{KEY}.gz", [CENTRAL_PARK], gz=True, mtime=1)
    load(engine, resolve_file(f"{URI}.gz", LEDGER_SUBJECT))
    start = version(engine)
    # The same lines compressed at another time: a new ETag, the same content.
    bucket.put(f"{KEY}.gz", [CENTRAL_PARK], gz=True, mtime=2)

    again = load(engine, resolve_file(f"{URI}.gz", LEDGER_SUBJECT))
    then = load(engine, resolve_file(f"{URI}.gz", LEDGER_SUBJECT))

    assert (again.skipped, again.unread, then.skipped, then.unread) == (True, False, True, True)
    assert bucket.gets() == 2  # read once to learn it is known content, then not again
    assert (version(engine), len(ledger_rows(engine))) == (start, 1)


def test_a_changed_s3_object_is_read_and_its_changes_loaded(engine: Engine, bucket: Bucket) -> None:
    bucket.put(KEY, [CENTRAL_PARK])
    load(engine, resolve_file(URI, LEDGER_SUBJECT))
    start = version(engine)
    bucket.put(KEY, [CENTRAL_PARK, MELBOURNE])

    stats = load(engine, resolve_file(URI, LEDGER_SUBJECT))

    assert (counts(stats), bucket.gets(), version(engine)) == ((1, 0, 1, 0), 2, start + 1)


def test_force_reads_an_unchanged_s3_object_again(engine: Engine, bucket: Bucket) -> None:
    bucket.put(KEY, [CENTRAL_PARK])
    load(engine, resolve_file(URI, LEDGER_SUBJECT))

    stats = load(engine, resolve_file(URI, LEDGER_SUBJECT), force=True)

    assert (stats.skipped, counts(stats), bucket.gets()) == (False, (0, 0, 1, 0), 2)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (f"s3://{BUCKET}/ghcnd/ghcnd-stations", "no such object in bucket 'wxhub-raw-test'"),
        (f"s3://{BUCKET}/other/ghcnd-stations.txt", "no such object in bucket 'wxhub-raw-test'"),
        (f"s3://{BUCKET}/ghcnd/", "no object key (expected s3://BUCKET/KEY)"),
        ("s3://wxhub-no-such-bucket/ghcnd-stations.txt", "the bucket does not exist"),
    ],
    ids=["a-longer-key-exists", "other-prefix", "a-prefix", "no-bucket"],
)
def test_a_missing_s3_object_is_a_source_error_naming_it(
    bucket: Bucket, spec: str, message: str
) -> None:
    bucket.put(KEY, [CENTRAL_PARK])

    with pytest.raises(SourceError) as error:
        resolve_file(spec, LEDGER_SUBJECT)

    assert str(error.value).startswith(f"source {spec!r}: ")
    assert message in str(error.value)
    assert bucket.gets() == 0


# --- wxhub stations -------------------------------------------------------------------------------


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def summary_of(result: Result) -> dict[str, Any]:
    (summary,) = [line for line in json_lines(result.stdout) if line.get("event") == "summary"]
    return summary


def runs(db_url: URL) -> list[Any]:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(select(job_runs).order_by(job_runs.c.id)))
    finally:
        engine.dispose()


@pytest.fixture
def wxhub(wxhub_in_process: Callable[..., Result], db_url: URL) -> Callable[..., Result]:
    """``wxhub ARGS...`` in this process, on the test's database."""
    return lambda *args: wxhub_in_process(
        *args, env={"DATABASE_URL": db_url.render_as_string(hide_password=False)}
    )


def test_wxhub_stations_loads_the_file_and_logs_one_summary_line(
    wxhub: Callable[..., Result], db_url: URL, tmp_path: Path
) -> None:
    path = write(tmp_path / "ghcnd-stations.txt", [CENTRAL_PARK, MELBOURNE, "bad"])

    result = wxhub("stations", str(path))

    assert result.exit_code == 0, result.output
    summary = summary_of(result)
    assert (summary["command"], summary["status"], summary["source"]) == (
        "stations",
        "succeeded",
        str(path),
    )
    records = ("read", "inserted", "updated", "unchanged", "rejected")
    assert [summary[f"records_{name}"] for name in records] == [3, 2, 0, 0, 1]
    assert (summary["files_seen"], summary["files_loaded"]) == (1, 1)
    assert summary["message"].endswith(
        f"{path}: 3 stations read, 2 inserted, 0 updated, 0 unchanged, 1 rejected"
    )
    (reject,) = [line for line in json_lines(result.stdout) if line.get("event") == "reject"]
    assert reject["message"].startswith(f"{path}:3: rejected: line is 3 characters long")
    (run,) = runs(db_url)
    assert (run.command, run.status, run.files_loaded, run.records_inserted) == (
        "stations",
        "succeeded",
        1,
        2,
    )


def test_wxhub_stations_skips_an_unchanged_file_and_force_reads_it_again(
    wxhub: Callable[..., Result], tmp_path: Path
) -> None:
    path = write(tmp_path / "ghcnd-stations.txt.gz", [CENTRAL_PARK, MELBOURNE], gz=True)
    assert wxhub("stations", str(path)).exit_code == 0

    skipped = wxhub("stations", str(path))
    forced = wxhub("stations", str(path), "--force")

    assert (skipped.exit_code, forced.exit_code) == (0, 0)
    assert summary_of(skipped)["files_skipped"] == 1
    assert summary_of(skipped)["message"].endswith("skipped (already loaded)")
    forced_summary = summary_of(forced)
    assert (forced_summary["files_loaded"], forced_summary["records_unchanged"]) == (1, 2)


@pytest.mark.parametrize(
    ("name", "reason"),
    [("no-such-file.txt", "no such file"), ("a-folder", "is a folder; give the file itself")],
)
def test_wxhub_stations_on_a_missing_file_is_a_usage_error_naming_it(
    wxhub: Callable[..., Result], tmp_path: Path, name: str, reason: str
) -> None:
    (tmp_path / "a-folder").mkdir()
    source = str(tmp_path / name)

    result = wxhub("stations", source)

    assert result.exit_code == 2
    (error,) = json_lines(result.stdout)
    assert error["message"] == f"error: source {source!r}: {reason}"


def test_wxhub_stations_on_an_unreadable_file_exits_1_and_records_the_failure(
    wxhub: Callable[..., Result], db_url: URL, tmp_path: Path
) -> None:
    path = tmp_path / "ghcnd-stations.txt.gz"
    path.write_bytes(b"not gzip")

    result = wxhub("stations", str(path))

    assert result.exit_code == 1
    summary = summary_of(result)
    assert (summary["status"], summary["files_failed"]) == ("failed", 1)
    (failure,) = [line for line in json_lines(result.stdout) if line.get("event") == "failure"]
    assert failure["message"].startswith(f"failed file: {path}: cannot read: not a valid gzip")
    (run,) = runs(db_url)
    assert (run.command, run.status, run.files_failed) == ("stations", "failed", 1)


def test_wxhub_stations_leaves_the_work_to_a_run_that_holds_the_job_lock(
    wxhub: Callable[..., Result], engine: Engine, db_url: URL, tmp_path: Path
) -> None:
    path = write(tmp_path / "ghcnd-stations.txt", [CENTRAL_PARK])

    with job_lock(engine):
        result = wxhub("stations", str(path))

    assert result.exit_code == 0
    (busy,) = json_lines(result.stdout)
    assert busy["event"] == "lock_busy"
    assert "another wxhub run holds the job lock" in busy["message"]
    assert (runs(db_url), stored(engine)) == ([], {})


def test_wxhub_stations_loads_an_s3_object_and_a_missing_one_exits_2_naming_it(
    wxhub: Callable[..., Result], bucket: Bucket
) -> None:
    bucket.put(KEY, [CENTRAL_PARK, MELBOURNE])

    loaded = wxhub("stations", URI)
    skipped = wxhub("stations", URI)
    missing = wxhub("stations", f"s3://{BUCKET}/ghcnd/ghcnd-stations.txt.gz")

    assert (loaded.exit_code, skipped.exit_code) == (0, 0), loaded.output
    assert summary_of(loaded)["records_inserted"] == 2
    assert summary_of(skipped)["files_skipped"] == 1
    assert bucket.gets() == 1
    assert missing.exit_code == 2
    (error,) = json_lines(missing.stdout)
    assert error["message"] == (
        f"error: source 's3://{BUCKET}/ghcnd/ghcnd-stations.txt.gz': no such object in bucket "
        f"{BUCKET!r}"
    )


def test_wxhub_help_lists_the_stations_command(
    wxhub_in_process: Callable[..., Result],
) -> None:
    overview = wxhub_in_process("--help")
    command = wxhub_in_process("stations", "--help")

    assert "stations" in overview.output
    assert "s3://bucket/key" in command.output
    assert "--force" in command.output
