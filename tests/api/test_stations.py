"""The stations with their NOAA metadata: the list's fields and filters, one station, on
SQLite and MariaDB.

The data comes through the job (station files); the metadata is written straight into
``stations``, as the metadata loader does, with the data version bumped in its transaction.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, insert

from tests.conftest import noaa_line, write_station
from tests.ghcn_files import stations_file, stations_line
from wxhub.api.app import create_app
from wxhub.api.schemas import MAX_CODES_PER_FILTER
from wxhub.config import load_settings
from wxhub.db.schema import bump_data_version, stations
from wxhub.ingestion.sources import resolve_file, resolve_sources
from wxhub.ingestion.stations import LEDGER_SUBJECT
from wxhub.job import run_job, run_stations

IL = "USC00110001"  # data and metadata
IN = "USC00120002"  # no elevation, a mixed-case name
IA = "USC00130003"  # a name with % and _ in it
ON = "CA006100004"  # Canada
BR = "BR000000005"  # no state, a name with a letter outside ASCII
NO_METADATA = "USC00990006"  # data only
METADATA_ONLY = "USW00094846"  # metadata only
WITH_DATA = sorted([IL, IN, IA, ON, BR, NO_METADATA])
MAX_PAGES = 20  # following links stops here: a fixture list has fewer


def _metadata(
    station_id: str, name: str, position: tuple[str, str, str | None], state: str | None
) -> dict[str, Any]:
    """A ``stations`` row; ``position`` is latitude, longitude and elevation (or None)."""
    lat, lon, elev = position
    return {
        "station_id": station_id,
        "country_code": station_id[:2],
        "latitude": Decimal(lat),
        "longitude": Decimal(lon),
        "elevation_m": None if elev is None else Decimal(elev),
        "state": state,
        "name": name,
        "gsn_flag": None,
        "hcn_crn_flag": None,
        "wmo_id": None,
    }


METADATA = [
    _metadata(IL, "O'HARE TEST", ("41.9950", "-87.9336", "201.8"), "IL"),
    _metadata(IN, "Indy Mixed Case", ("39.7173", "-86.2944", None), "IN"),
    _metadata(IA, "A_B 50%", ("41.5000", "-93.6000", "291.0"), "IA"),
    # "AXB 500" is what _ and % would match as wildcards.
    _metadata(ON, "AXB 500 OTTAWA", ("45.3833", "-75.7167", "114.0"), "ON"),
    _metadata(BR, "SÃO PAULO", ("-23.5000", "-46.6167", "792.0"), None),
    {
        **_metadata(METADATA_ONLY, "CHICAGO OHARE INTL AP", ("41.9950", "-87.9336", "201.8"), "IL"),
        "hcn_crn_flag": "HCN",
        "wmo_id": "72530",
    },
]


def load_metadata(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """What the metadata loader does: the rows and a new data version, in one transaction."""
    with engine.begin() as conn:
        conn.execute(insert(stations), rows)
        bump_data_version(conn)


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> FlaskClient:
    folder = tmp_path / "in"
    for day, station_id in enumerate(WITH_DATA, start=1):
        write_station(folder, station_id, [noaa_line(f"200001{day:02d}", 100, -50, 0)])
    assert run_job(engine, "run", sources=resolve_sources([str(folder)])) == 0
    load_metadata(engine, METADATA)
    settings = load_settings({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    return create_app(settings, engine=engine).test_client()


def get(client: FlaskClient, url: str, status: int = 200) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json  # type: ignore[return-value]


def ids(body: dict[str, Any]) -> list[str]:
    return [item["station_id"] for item in body["data"]]


def follow(client: FlaskClient, url: str, rel: str = "next") -> list[dict[str, Any]]:
    pages = []
    next_url: str | None = url
    while next_url:
        body = get(client, next_url)
        pages.append(body)
        next_url = body["pagination"][rel]
        assert len(pages) <= MAX_PAGES, f"{rel} links still going after {MAX_PAGES} pages"
    return pages


def test_list_items_gain_name_position_and_state_after_the_fields_they_had(client):
    response = client.get("/api/stations")

    items = json.loads(response.get_data(), object_pairs_hook=list)[0][1]
    il = dict(next(item for item in items if dict(item)["station_id"] == IL))
    assert [key for key, _ in items[0]] == [
        "station_id",
        "first_date",
        "last_date",
        "observations",
        "name",
        "latitude",
        "longitude",
        "elevation_m",
        "state",
    ]
    assert il == {
        "station_id": IL,
        "first_date": "2000-01-03",
        "last_date": "2000-01-03",
        "observations": 1,
        "name": "O'HARE TEST",
        "latitude": 41.995,
        "longitude": -87.9336,
        "elevation_m": 201.8,
        "state": "IL",
    }
    # JSON numbers with the stored digits, whatever the backend stores them as.
    assert b'"latitude":41.995,"longitude":-87.9336,"elevation_m":201.8,' in response.get_data()


def test_the_list_stays_the_stations_with_data_and_one_without_metadata_has_nulls(client):
    body = get(client, "/api/stations")

    assert ids(body) == WITH_DATA
    assert METADATA_ONLY not in ids(body)
    assert body["pagination"]["total"] == len(WITH_DATA)
    no_metadata = next(item for item in body["data"] if item["station_id"] == NO_METADATA)
    assert no_metadata == {
        "station_id": NO_METADATA,
        "first_date": "2000-01-06",
        "last_date": "2000-01-06",
        "observations": 1,
        "name": None,
        "latitude": None,
        "longitude": None,
        "elevation_m": None,
        "state": None,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("state=IL", [IL]),
        ("state=il,IN", [IL, IN]),
        ("state=IN,IL,IN", [IL, IN]),
        ("state=ON", [ON]),
        ("state=TX", []),
        ("country=CA", [ON]),
        # NO_METADATA's id starts with US too: a metadata filter leaves it out.
        ("country=US", [IL, IN, IA]),
        ("country=us,br", [BR, IL, IN, IA]),
        ("country=US&state=IA", [IA]),
        ("country=CA&state=IL", []),
        ("bbox=-94,39,-86,42", [IL, IN, IA]),
        ("bbox=-87.9336,41.995,-87.9336,41.995", [IL]),  # edges included
        ("bbox=-180,-90,180,90", [BR, ON, IL, IN, IA]),
        ("bbox=-94,39,-86,42&state=IN,IA", [IN, IA]),
        ("q=o'h", [IL]),
        ("q=MIXED", [IN]),
        ("q=ottawa", [ON]),
        ("q=a_b", [IA]),  # _ is an underscore, not any one character ("AXB")
        ("q=50%25", [IA]),  # % is a percent sign, not anything ("500")
        ("q=%25", [IA]),
        ("q=paulo", [BR]),
        ("q=sao", []),  # Ã is not A: MySQL's collations would say it is
        ("q=indy&state=IL", []),
    ],
)
def test_metadata_filters_keep_the_matching_stations_with_data_and_total_counts_them(
    client, query, expected
):
    body = get(client, f"/api/stations?{query}")

    assert ids(body) == expected
    assert body["pagination"]["total"] == len(expected)


@pytest.mark.parametrize(
    "query", ["state=IA,IN,IL", "country=US,CA,BR", "q=a", "bbox=-180,-90,180,90"]
)
def test_filtered_pages_follow_walk_back_and_jump_alike(client, query):
    everything = ids(get(client, f"/api/stations?{query}"))

    pages = follow(client, f"/api/stations?{query}&page_size=2")
    back = follow(client, pages[-1]["pagination"]["prev"], rel="prev") if len(pages) > 1 else []

    assert [station for page in pages for station in ids(page)] == everything
    assert len(everything) >= 3
    assert [ids(page) for page in back] == [ids(page) for page in reversed(pages[:-1])]
    for number, page in enumerate(pages, start=1):
        jumped = get(client, f"/api/stations?{query}&page_size=2&page={number}")
        assert ids(jumped) == ids(page)
        assert jumped["pagination"]["total"] == len(everything)


def test_a_cursor_of_one_filter_is_refused_with_another(client):
    next_url = get(client, "/api/stations?state=IL,IN&page_size=1")["pagination"]["next"]

    body = get(client, next_url.replace("state=IL%2CIN", "state=IL"), 400)

    assert body["parameter"] == "cursor"


def test_a_filtered_total_follows_a_metadata_load_that_bumps_the_data_version(client, engine):
    before = client.get("/api/stations?state=IL")
    assert before.json["pagination"]["total"] == 1

    load_metadata(engine, [_metadata(NO_METADATA, "LATE ARRIVAL", ("40.1", "-88.2", None), "IL")])
    after = client.get("/api/stations?state=IL", headers={"If-None-Match": before.headers["ETag"]})

    assert after.status_code == 200
    assert after.headers["ETag"] != before.headers["ETag"]
    assert ids(after.json) == [IL, NO_METADATA]
    assert after.json["pagination"]["total"] == 2


def test_the_metadata_loader_s_list_shows_in_the_api_and_a_new_list_changes_the_answers(
    engine: Engine, tmp_path: Path
):
    folder = tmp_path / "in"
    write_station(folder, IL, [noaa_line("20000101", 100, -50, 0)])
    write_station(folder, IN, [noaa_line("20000101", 100, -50, 0)])
    assert run_job(engine, "run", sources=resolve_sources([str(folder)])) == 0
    listed = [stations_line(IL, 41.995, -87.9336, 201.8, "IL", "O'HARE TEST", wmo_id="72530")]
    station_list = tmp_path / "ghcnd-stations.txt"
    station_list.write_bytes(stations_file(listed))
    assert run_stations(engine, resolve_file(str(station_list), LEDGER_SUBJECT)) == 0
    settings = load_settings({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    client = create_app(settings, engine=engine).test_client()
    first = client.get("/api/stations?state=IL")

    listed.append(stations_line(IN, 39.7173, -86.2944, 241.1, "IL", "MOVED TO ILLINOIS"))
    station_list.write_bytes(stations_file(listed))
    assert run_stations(engine, resolve_file(str(station_list), LEDGER_SUBJECT)) == 0
    after = client.get("/api/stations?state=IL", headers={"If-None-Match": first.headers["ETag"]})

    assert ids(first.json) == [IL]
    assert first.json["data"][0]["latitude"] == 41.995
    assert get(client, f"/api/stations/{IL}")["wmo_id"] == "72530"
    assert after.status_code == 200
    assert ids(after.json) == [IL, IN]
    assert after.json["pagination"]["total"] == 2
    assert after.json["data"][1]["name"] == "MOVED TO ILLINOIS"


def test_filtered_lists_answer_304_to_their_etag(client):
    first = client.get("/api/stations?country=US")

    again = client.get("/api/stations?country=US", headers={"If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304
    assert client.get("/api/stations?country=CA").headers["ETag"] != first.headers["ETag"]


ALLOWED_BBOX = "MIN_LON,MIN_LAT,MAX_LON,MAX_LAT"


@pytest.mark.parametrize(
    ("query", "parameter", "says"),
    [
        ("bbox=1,2,3", "bbox", ALLOWED_BBOX),
        ("bbox=1,2,3,4,5", "bbox", ALLOWED_BBOX),
        ("bbox=", "bbox", ALLOWED_BBOX),
        ("bbox=west,0,1,1", "bbox", "not a number"),
        ("bbox=NaN,0,1,1", "bbox", "not a number"),
        ("bbox=0,0,Infinity,1", "bbox", "not a number"),
        ("bbox=-180.5,0,0,1", "bbox", "outside -180..180"),
        ("bbox=0,0,1e400,1", "bbox", "outside -180..180"),
        ("bbox=0,-91,1,1", "bbox", "outside -90..90"),
        ("bbox=10,0,5,5", "bbox", "MIN_LON 10 is east of MAX_LON 5"),
        ("bbox=0,10,5,5", "bbox", "MIN_LAT 10 is north of MAX_LAT 5"),
        ("state=ILL", "state", "two-letter code"),
        ("state=I1", "state", "two-letter code"),
        ("state=IL,,IN", "state", "two-letter code"),
        (
            "state=" + ",".join(["IL"] * (MAX_CODES_PER_FILTER + 1)),
            "state",
            f"at most {MAX_CODES_PER_FILTER} codes",
        ),
        ("country=USA", "country", "two-letter code"),
        ("q=", "q", "at least 1"),
        ("q=" + "x" * 31, "q", "at most 30"),
        ("q=S%C3%83O", "q", "ASCII"),
        ("q=tab%09", "q", "ASCII"),
    ],
)
def test_an_invalid_filter_is_a_400_problem_naming_it_and_what_is_allowed(
    client, query, parameter, says
):
    response = client.get(f"/api/stations?{query}")

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["parameter"] == parameter
    assert says in response.json["detail"]


def test_one_station_has_the_fields_of_a_list_item_and_its_country_flags_and_wmo_id(client):
    listed = next(item for item in get(client, "/api/stations")["data"] if item["station_id"] == IL)

    body = get(client, f"/api/stations/{IL}")

    assert body == {
        **listed,
        "country": "US",
        "gsn_flag": None,
        "hcn_crn_flag": None,
        "wmo_id": None,
    }


def test_a_station_known_from_its_metadata_alone_has_no_days(client):
    body = get(client, f"/api/stations/{METADATA_ONLY}")

    assert body == {
        "station_id": METADATA_ONLY,
        "first_date": None,
        "last_date": None,
        "observations": 0,
        "name": "CHICAGO OHARE INTL AP",
        "latitude": 41.995,
        "longitude": -87.9336,
        "elevation_m": 201.8,
        "state": "IL",
        "country": "US",
        "gsn_flag": None,
        "hcn_crn_flag": "HCN",
        "wmo_id": "72530",
    }


def test_a_station_with_data_alone_has_null_metadata(client):
    body = get(client, f"/api/stations/{NO_METADATA}")

    assert body["observations"] == 1
    assert body["first_date"] == "2000-01-06"
    assert {key: body[key] for key in ("name", "latitude", "country", "wmo_id")} == dict.fromkeys(
        ("name", "latitude", "country", "wmo_id")
    )


def test_an_unknown_station_is_a_404_problem_and_a_malformed_id_a_400(client):
    unknown = client.get("/api/stations/USC99999999")
    malformed = client.get("/api/stations/USC%2700")

    assert unknown.status_code == 404
    assert unknown.mimetype == "application/problem+json"
    assert "USC99999999" in unknown.json["detail"]
    assert malformed.status_code == 400
    assert malformed.json["parameter"] == "station_id"


def test_one_station_carries_an_etag_and_answers_304(client):
    first = client.get(f"/api/stations/{IL}")

    again = client.get(f"/api/stations/{IL}", headers={"If-None-Match": first.headers["ETag"]})

    assert again.status_code == 304
    assert client.get(f"/api/stations/{IN}").headers["ETag"] != first.headers["ETag"]


def test_the_openapi_document_shows_the_filters_and_one_station_with_examples(client):
    spec = get(client, "/api/openapi.json")

    parameters = {p["name"]: p for p in spec["paths"]["/api/stations"]["get"]["parameters"]}
    for name in ("state", "country", "bbox", "q"):
        assert parameters[name]["description"]
        assert parameters[name]["example"]
    one = spec["paths"]["/api/stations/{station_id}"]["get"]
    assert {"200", "304", "400", "404", "503"} <= set(one["responses"])
    example = one["responses"]["200"]["content"]["application/json"]["example"]
    assert example["observations"] == 0
    assert example["latitude"] == 41.995
    listed = spec["paths"]["/api/stations"]["get"]["responses"]["200"]["content"]
    assert listed["application/json"]["example"]["data"][0]["station_id"] == "USC00110072"
    assert set(spec["components"]["schemas"]["Station"]["properties"]) >= {
        "name",
        "latitude",
        "longitude",
        "elevation_m",
        "state",
    }
