"""The list endpoints: filters, pagination, errors, on SQLite and MariaDB, small fixture."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_spec_validator import validate
from sqlalchemy import Engine, event, func, select
from sqlalchemy.engine import URL
from werkzeug.test import TestResponse

from tests.api.conftest import STATIONS
from tests.conftest import noaa_line, write_station
from wxhub.api.app import create_app
from wxhub.api.caching import ResponseCache, StoredResponse
from wxhub.api.routes import weather as weather_route
from wxhub.config import load_settings
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.db.schema import data_version, weather_observations, weather_yearly_stats
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import EXIT_OK, run_job


def get(client: FlaskClient, url: str, status: int = 200) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json  # type: ignore[return-value]


def follow(client: FlaskClient, url: str, rel: str = "next") -> list[dict[str, Any]]:
    """Every page from ``url`` on, following ``rel`` links."""
    pages = []
    next_url: str | None = url
    while next_url:
        body = get(client, next_url)
        pages.append(body)
        next_url = body["pagination"][rel]
    return pages


def test_observations_are_ordered_by_station_then_date_with_units_converted(client):
    body = get(client, "/api/weather")

    keys = [(item["station_id"], item["date"]) for item in body["data"]]
    assert keys == sorted(keys)
    assert len(keys) == 10
    second = next(item for item in body["data"] if item["station_id"] == STATIONS[1])
    assert second == {
        "station_id": STATIONS[1],
        "date": "2001-01-01",
        "max_temp_c": 25.5,
        "min_temp_c": None,
        "precipitation_mm": 1.7,
    }
    assert body["pagination"] == {
        "page": 1,
        "page_size": 100,
        "total": 10,
        "next": None,
        "prev": None,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (f"station_id={STATIONS[1]}", 3),
        (f"station_id={STATIONS[1]},{STATIONS[2]}", 4),
        ("date=2001-01-01", 2),
        ("start_date=2001-01-02", 5),
        ("end_date=2000-12-31", 3),
        ("start_date=2000-12-31&end_date=2001-01-02", 5),
        (f"station_id={STATIONS[0]}&start_date=2001-01-01&end_date=2001-01-01", 1),
        ("station_id=NOSUCHSTATION", 0),
        ("date=1985-01-01", 0),
    ],
)
def test_observation_filters_select_the_matching_days_and_total_counts_them(
    client, query, expected
):
    body = get(client, f"/api/weather?{query}")

    assert len(body["data"]) == expected
    assert body["pagination"]["total"] == expected


def test_following_next_visits_every_row_once_in_order_and_prev_walks_back(client):
    everything = get(client, "/api/weather")["data"]

    pages = follow(client, "/api/weather?page_size=3")
    back = follow(client, pages[-1]["pagination"]["prev"], rel="prev")

    assert [item for page in pages for item in page["data"]] == everything
    assert [p["pagination"]["page"] for p in pages] == [1, 2, 3, 4]
    assert pages[-1]["pagination"]["next"] is None
    assert [p["data"] for p in back] == [p["data"] for p in reversed(pages[:-1])]
    assert back[-1]["pagination"]["prev"] is None


@pytest.mark.parametrize("page_size", [1, 2, 3, 4, 7])
def test_jumping_to_page_n_gives_the_page_the_links_lead_to(client, page_size):
    pages = follow(client, f"/api/weather?page_size={page_size}")

    for number, page in enumerate(pages, start=1):
        jumped = get(client, f"/api/weather?page_size={page_size}&page={number}")
        assert jumped["data"] == page["data"]
        assert jumped["pagination"]["total"] == 10


def test_page_jumps_respect_a_date_range_that_cuts_years(client):
    url = "/api/weather?start_date=2000-12-31&end_date=2001-01-02&page_size=2"
    pages = follow(client, url)

    for number, page in enumerate(pages, start=1):
        assert get(client, f"{url}&page={number}")["data"] == page["data"]


def test_a_page_beyond_the_end_is_empty_with_a_link_back(client):
    body = get(client, "/api/weather?page_size=3&page=9")

    assert body["data"] == []
    assert body["pagination"]["next"] is None
    assert "page=4" in body["pagination"]["prev"]


def test_links_are_also_in_an_rfc_8288_link_header(client):
    response = client.get("/api/weather?page_size=3&page=2")
    body = response.json

    assert response.headers["Link"] == (
        f'<{body["pagination"]["next"]}>; rel="next", <{body["pagination"]["prev"]}>; rel="prev"'
    )


def test_a_tampered_cursor_is_a_400_naming_the_cursor(client):
    cursor = get(client, "/api/weather?page_size=3")["pagination"]["next"].split("cursor=")[1]
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    raw[-5] ^= 1
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")

    for bad in (tampered, "not-a-cursor", "A" * 40):
        body = get(client, f"/api/weather?page_size=3&cursor={bad}", 400)
        assert body["parameter"] == "cursor"


def test_a_cursor_used_with_other_filters_is_refused(client):
    next_url = get(client, "/api/weather?page_size=3")["pagination"]["next"]

    body = get(client, f"{next_url}&station_id={STATIONS[0]}", 400)

    assert body["parameter"] == "cursor"


def test_yearly_statistics_filter_by_station_and_years(client):
    body = get(client, f"/api/weather/stats?station_id={STATIONS[0]}")

    assert [(s["year"], s["max_temp_days"]) for s in body["data"]] == [(2000, 2), (2001, 4)]
    assert body["data"][0]["avg_max_temp_c"] == 1.05  # (10 + 11) / 2 tenths
    assert get(client, "/api/weather/stats?year=1999")["pagination"]["total"] == 1
    assert (
        get(client, "/api/weather/stats?start_year=2000&end_year=2000")["data"][0]["station_id"]
        == STATIONS[0]
    )
    assert get(client, "/api/weather/stats?start_year=2001")["pagination"]["total"] == 2


def test_statistics_with_no_contributing_day_are_null(client):
    body = get(client, f"/api/weather/stats?station_id={STATIONS[1]}")

    stats = body["data"][0]
    assert stats["avg_min_temp_c"] is None
    assert stats["min_temp_days"] == 0
    assert stats["avg_max_temp_c"] == 11.2  # (255 - 31) / 2 tenths
    assert stats["total_precipitation_cm"] == 0.17


def test_statistics_pages_follow_and_jump_alike(client):
    pages = follow(client, "/api/weather/stats?page_size=2")

    assert sum(len(p["data"]) for p in pages) == 4
    for number, page in enumerate(pages, start=1):
        jumped = get(client, f"/api/weather/stats?page_size=2&page={number}")
        assert jumped["data"] == page["data"]


def test_stations_list_their_first_and_last_day_and_number_of_days(client):
    body = get(client, "/api/stations")

    # No metadata loaded: the metadata fields are null (tests/api/test_stations.py).
    no_metadata = dict.fromkeys(("name", "latitude", "longitude", "elevation_m", "state"))
    assert body["data"] == [
        {
            "station_id": STATIONS[0],
            "first_date": "2000-12-30",
            "last_date": "2001-01-04",
            "observations": 6,
            **no_metadata,
        },
        {
            "station_id": STATIONS[1],
            "first_date": "2001-01-01",
            "last_date": "2001-01-03",
            "observations": 3,
            **no_metadata,
        },
        {
            "station_id": STATIONS[2],
            "first_date": "1999-06-15",
            "last_date": "1999-06-15",
            "observations": 1,
            **no_metadata,
        },
    ]
    assert [p["data"][0]["station_id"] for p in follow(client, "/api/stations?page_size=1")] == [
        *STATIONS
    ]


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/weather?date=2001-02-30", "date"),
        ("/api/weather?date=yesterday", "date"),
        ("/api/weather?start_date=2001-01-02&end_date=2001-01-01", "start_date"),
        ("/api/weather?date=2001-01-01&start_date=2001-01-01", "date"),
        ("/api/weather?page=0", "page"),
        ("/api/weather?page=-1", "page"),
        ("/api/weather?page_size=0", "page_size"),
        ("/api/weather?page_size=1001", "page_size"),
        ("/api/weather?station_id=USC 1", "station_id"),
        ("/api/weather?station_id=A,,B", "station_id"),
        ("/api/weather?station_id=" + ",".join(f"S{i}" for i in range(201)), "station_id"),
        ("/api/weather?stationid=USC00000001", "stationid"),
        ("/api/weather/stats?year=1700", "year"),
        ("/api/weather/stats?start_year=2001&end_year=2000", "start_year"),
        ("/api/weather/stats?year=abc", "year"),
        ("/api/stations?station_id=USC00000001", "station_id"),
    ],
)
def test_an_invalid_parameter_is_a_400_problem_naming_it(client, url, parameter):
    response = client.get(url)

    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert response.json["parameter"] == parameter
    assert response.json["status"] == 400
    assert response.json["detail"]


def test_the_openapi_document_describes_every_list_and_swagger_ui_is_served_locally(client):
    spec = get(client, "/api/openapi.json")

    assert {"/api/weather", "/api/weather/stats", "/api/stations"} <= set(spec["paths"])
    parameters = {p["name"] for p in spec["paths"]["/api/weather"]["get"]["parameters"]}
    assert parameters >= {"station_id", "date", "start_date", "end_date", "page", "page_size"}
    page = client.get("/api/docs").get_data(as_text=True)
    assert "swagger/js/swagger-ui-bundle.js" in page
    assert "://" not in page.split("<body")[0].replace("http://www.w3.org", "")
    assert client.get("/api/swagger/js/swagger-ui-bundle.js").status_code == 200


def test_the_openapi_document_is_valid_openapi_3(client):
    validate(get(client, "/api/openapi.json"))


def test_the_docs_can_be_turned_off(engine: Engine):
    settings = load_settings(
        {"DATABASE_URL": engine.url.render_as_string(hide_password=False), "WXHUB_API_DOCS": "off"}
    )
    client = create_app(settings, engine=engine).test_client()

    assert client.get("/api/docs").status_code == 404
    assert client.get("/api/openapi.json").status_code == 404


def test_data_responses_carry_an_etag_and_answer_304_to_if_none_match(client):
    first = client.get("/api/weather?station_id=USC00000001")
    etag = first.headers["ETag"]

    again = client.get("/api/weather?station_id=USC00000001", headers={"If-None-Match": etag})
    other_query = client.get("/api/weather?station_id=USC00000002", headers={"If-None-Match": etag})

    assert "max-age=" in first.headers["Cache-Control"]
    assert again.status_code == 304
    assert again.get_data() == b""
    assert again.headers["ETag"] == etag
    assert other_query.status_code == 200


def test_the_etag_changes_only_when_a_run_writes_something(client, engine: Engine, tmp_path: Path):
    url = f"/api/weather/stats?station_id={STATIONS[2]}"
    before = client.get(url).headers["ETag"]
    folder = tmp_path / "in"

    assert run_job(engine, "run", sources=resolve_sources([str(folder)])) == EXIT_OK  # nothing new
    unchanged = client.get(url).headers["ETag"]
    write_station(tmp_path / "fix", STATIONS[2], [noaa_line("19990615", 301, 150, 1234)])
    assert run_job(engine, "run", sources=resolve_sources([str(tmp_path / "fix")])) == EXIT_OK
    after = client.get(url, headers={"If-None-Match": before})

    assert unchanged == before
    assert after.status_code == 200
    assert after.headers["ETag"] != before
    assert after.json["data"][0]["avg_max_temp_c"] == 30.1


def _csv_rows(response: TestResponse) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True))))


def test_format_csv_streams_every_matching_row_without_pagination(client):
    response = client.get(f"/api/weather?station_id={STATIONS[1]}&format=csv&page_size=1")

    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert _csv_rows(response) == [
        ["station_id", "date", "max_temp_c", "min_temp_c", "precipitation_mm"],
        [STATIONS[1], "2001-01-01", "25.5", "", "1.7"],
        [STATIONS[1], "2001-01-02", "", "", ""],
        [STATIONS[1], "2001-01-03", "-3.1", "", "0.0"],
    ]


def test_accept_text_csv_asks_for_csv_too_and_has_its_own_etag(client):
    as_csv = client.get("/api/weather", headers={"Accept": "text/csv"})
    as_json = client.get("/api/weather")

    assert as_csv.mimetype == "text/csv"
    assert len(_csv_rows(as_csv)) == 11
    assert as_json.mimetype == "application/json"
    assert as_csv.headers["ETag"] != as_json.headers["ETag"]
    assert "Accept" in as_csv.headers["Vary"]


def test_statistics_export_as_csv(client):
    rows = _csv_rows(client.get("/api/weather/stats?format=csv"))

    assert rows[0][:3] == ["station_id", "year", "avg_max_temp_c"]
    assert len(rows) == 5
    assert rows[1][:2] == [STATIONS[0], "2000"]


# Every shape of filter each list's CSV can be asked with: none, one and two station ids
# (and one with no data), each bound alone and with the others.
_WEATHER_FILTERS = [
    {},
    {"station_id": STATIONS[0]},
    {"station_id": f"{STATIONS[2]},{STATIONS[0]}"},
    {"station_id": "USC00999999"},
    {"start_date": "2001-01-01"},
    {"end_date": "2001-01-02"},
    {"start_date": "2000-12-31", "end_date": "2001-01-02"},
    {"date": "2001-01-02"},
    {"station_id": STATIONS[1], "start_date": "2001-01-02"},
    {"station_id": f"{STATIONS[0]},{STATIONS[1]}", "end_date": "2001-01-01"},
    {"station_id": f"{STATIONS[0]},{STATIONS[1]}", "date": "2001-01-03"},
    {"station_id": STATIONS[2], "start_date": "1999-01-01", "end_date": "1999-12-31"},
]
_STATS_FILTERS = [
    {},
    {"station_id": STATIONS[0]},
    {"station_id": f"{STATIONS[2]},{STATIONS[0]}"},
    {"station_id": "USC00999999"},
    {"start_year": "2000"},
    {"end_year": "2000"},
    {"start_year": "2000", "end_year": "2001"},
    {"year": "2001"},
    {"station_id": f"{STATIONS[0]},{STATIONS[1]}", "start_year": "2001"},
    {"station_id": STATIONS[0], "end_year": "2000"},
    {"station_id": f"{STATIONS[1]},{STATIONS[2]}", "year": "1999"},
]


@pytest.mark.parametrize(
    ("path", "filters"),
    [("/api/weather", filters) for filters in _WEATHER_FILTERS]
    + [("/api/weather/stats", filters) for filters in _STATS_FILTERS],
    ids=lambda value: (
        ("&".join(f"{k}={v}" for k, v in value.items()) or "none")
        if isinstance(value, dict)
        else value
    ),
)
def test_csv_has_the_rows_of_every_json_page_for_every_filter(
    client, path: str, filters: dict[str, str]
):
    """The CSV export and the JSON pages are two views of one filtered query: the same rows
    in the same order, the CSV's cells the items' values (empty for null)."""
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    pages = follow(client, f"{path}?{query}&page_size=2")
    items = [item for page in pages for item in page["data"]]
    rows = _csv_rows(client.get(f"{path}?{query}&format=csv"))

    header, *cells = rows
    assert cells == [["" if v is None else str(v) for v in item.values()] for item in items]
    assert all(list(item) == header for item in items)
    assert len(cells) == pages[0]["pagination"]["total"]


@pytest.mark.parametrize("path", ["/api/weather", "/api/weather/stats"])
def test_a_csv_export_reads_from_a_streaming_cursor(client, engine: Engine, path):
    """An export of the whole table must not be fetched into memory before its first line:
    MySQL's server-side cursor class; on SQLite, its own cursor, which is lazy already."""
    streaming = (
        sqlite3.Cursor
        if engine.dialect.name == "sqlite"
        else engine.dialect.loaded_dbapi.cursors.SSCursor
    )
    cursors: list[type] = []

    def record(_conn: Any, cursor: Any, statement: str, *_args: Any) -> None:
        if "data_version" not in statement:
            cursors.append(type(cursor))

    app_engine = client.application.extensions["wxhub.engine"]
    event.listen(app_engine, "before_cursor_execute", record)
    try:
        client.get(f"{path}?format=csv&station_id={STATIONS[0]}").get_data()
    finally:
        event.remove(app_engine, "before_cursor_execute", record)

    assert cursors
    assert set(cursors) == {streaming}


def test_an_unknown_format_is_a_400(client):
    assert get(client, "/api/weather?format=xml", 400)["parameter"] == "format"


@contextmanager
def statements_sent(client: FlaskClient) -> Iterator[list[str]]:
    """Every statement the app sends to its database while the block runs (a listener on
    the engine the app was built with), whitespace folded."""
    sent: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(" ".join(statement.split()))

    app_engine = client.application.extensions["wxhub.engine"]
    event.listen(app_engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(app_engine, "before_cursor_execute", record)


def queries(sent: list[str]) -> list[str]:
    """The statements that read something: all but the explicit BEGIN with which the SQLite
    engine starts each transaction (src/wxhub/db/engine.py)."""
    return [statement for statement in sent if statement != "BEGIN"]


def version_query(engine: Engine) -> str:
    """What a request answered from the cache reads: the data version."""
    read = select(func.max(data_version.c.version))
    return " ".join(str(read.compile(dialect=engine.dialect)).split())


def answer_cache(client: FlaskClient) -> ResponseCache:
    return client.application.extensions["wxhub.response_cache"]  # type: ignore[no-any-return]


def test_a_repeated_request_is_answered_from_the_workers_cache_after_one_version_read(
    client, engine: Engine
):
    url = f"/api/weather?station_id={STATIONS[0]}&page_size=2"
    with statements_sent(client) as first_sent:
        first = client.get(url)
    with statements_sent(client) as again_sent:
        again = client.get(url, headers={"X-Request-ID": "second"})

    # Built: the version, the station-years' counts, the page. Then the version alone.
    assert len(queries(first_sent)) == 3
    # Exactly one statement, on both backends: the API's reads run in autocommit (no BEGIN).
    assert again_sent == [version_query(engine)]
    assert again.status_code == 200
    assert again.get_data() == first.get_data()
    assert again.headers["Link"] == first.headers["Link"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert again.headers["X-Request-ID"] == "second"


def test_a_stats_filter_not_seen_before_reads_the_version_and_its_total_in_one_statement(
    client, engine: Engine
):
    """On MySQL every statement is a round trip: a distinct statistics page costs two."""
    url = f"/api/weather/stats?station_id={STATIONS[0]},{STATIONS[1]}&page_size=2"
    with statements_sent(client) as sent:
        page = get(client, url)
    with statements_sent(client) as next_sent:
        following = get(client, page["pagination"]["next"])
    with engine.connect() as conn:
        rows = conn.execute(
            select(func.count())
            .select_from(weather_yearly_stats)
            .where(weather_yearly_stats.c.station_id.in_(STATIONS[:2]))
        ).scalar_one()

    first, second = queries(sent)
    assert "data_version" in first
    assert "count(" in first.lower()
    assert "data_version" not in second
    assert page["pagination"]["total"] == rows == following["pagination"]["total"]
    assert rows > 2
    # The next page of the same filter: its total is kept, so the version is read alone.
    assert queries(next_sent)[0] == version_query(engine)
    assert not any("count(" in statement.lower() for statement in queries(next_sent))


def observation_count(engine: Engine, stations: tuple[str, ...], first: str, last: str) -> int:
    """The rows of ``stations`` between two days, counted in the table itself."""
    with engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count())
                .select_from(weather_observations)
                .where(
                    weather_observations.c.station_id.in_(stations),
                    weather_observations.c.obs_date.between(
                        dt.date.fromisoformat(first), dt.date.fromisoformat(last)
                    ),
                )
            ).scalar_one()
        )


def test_a_weather_page_from_inside_a_year_reads_that_years_count_with_the_version(
    client, engine: Engine
):
    """On MySQL every statement is a round trip: a distinct page of one station from a day
    inside a year costs two (the version with the partial year's count, then the page) once
    the station's years are known."""
    station = STATIONS[0]  # 2000-12-30 .. 2001-01-04
    get(client, f"/api/weather?station_id={station}&start_date=2000-12-31")  # its years
    url = f"/api/weather?station_id={station}&start_date=2001-01-02&page_size=2"
    with statements_sent(client) as sent:
        page = get(client, url)
    with statements_sent(client) as jump_sent:
        jumped = get(client, f"{url}&page=2")

    first, second = queries(sent)
    assert "data_version" in first
    assert first.lower().count("count(") == 1
    assert "data_version" not in second
    assert [item["date"] for item in page["data"]] == ["2001-01-02", "2001-01-03"]
    assert page["pagination"]["total"] == 3
    assert page["pagination"]["total"] == observation_count(
        engine, (station,), "2001-01-02", "2001-12-31"
    )
    # The same filter's next request: its counts are kept, so the version is read alone.
    assert queries(jump_sent)[0] == version_query(engine)
    assert [item["date"] for item in jumped["data"]] == ["2001-01-04"]


@pytest.mark.parametrize("with_version", [8, 1])
def test_both_partial_years_of_several_stations_count_exactly(
    client, engine: Engine, monkeypatch: pytest.MonkeyPatch, with_version: int
):
    """Two stations, a range that cuts two years: four counts, all in the version's
    statement up to EXACT_WITH_VERSION stations, else one GROUP BY per year after it; the
    total and the pages are the same either way."""
    monkeypatch.setattr(weather_route, "EXACT_WITH_VERSION", with_version)
    stations = STATIONS[:2]
    query = f"station_id={','.join(stations)}&start_date=2000-12-31&end_date=2001-01-02"
    with statements_sent(client) as sent:
        page = get(client, f"/api/weather?{query}&page_size=2")
    items = [
        item
        for body in follow(client, f"/api/weather?{query}&page_size=2")
        for item in body["data"]
    ]

    counts_with_version = queries(sent)[0].lower().count("count(")
    assert counts_with_version == (4 if with_version == 8 else 0)
    expected = observation_count(engine, stations, "2000-12-31", "2001-01-02")
    assert page["pagination"]["total"] == len(items) == expected == 5


def test_counts_read_with_the_version_keep_their_own_parameters(client, engine: Engine):
    """Two stations with one partial year, then one station with two: on SQLite both
    statements are the same text of ``?`` in a different order of parameters."""
    two_stations = get(
        client, f"/api/weather?station_id={STATIONS[0]},{STATIONS[1]}&start_date=2001-01-02"
    )
    two_years = get(
        client,
        f"/api/weather?station_id={STATIONS[0]}&start_date=2000-12-31&end_date=2001-01-02",
    )

    assert two_stations["pagination"]["total"] == observation_count(
        engine, STATIONS[:2], "2001-01-02", "2001-12-31"
    )
    assert two_years["pagination"]["total"] == 3


def test_a_range_inside_one_year_counts_that_year_once(client, engine: Engine):
    station = STATIONS[0]
    query = f"station_id={station}&start_date=2001-01-02&end_date=2001-01-03"
    with statements_sent(client) as sent:
        body = get(client, f"/api/weather?{query}")

    assert queries(sent)[0].lower().count("count(") == 1
    assert [item["date"] for item in body["data"]] == ["2001-01-02", "2001-01-03"]
    assert body["pagination"]["total"] == 2


def test_a_station_page_jump_is_one_statement_after_the_version(client, engine: Engine):
    """From the nearest kept anchor, the page itself with an OFFSET of fewer than
    ANCHOR_EVERY keys: no separate read of the page's first key."""
    pages = follow(client, "/api/stations?page_size=1")
    get(client, "/api/stations?page_size=1&page=3")  # the anchors, once per data version
    with statements_sent(client) as sent:
        jumped = get(client, "/api/stations?page_size=1&page=2")

    assert queries(sent)[0] == version_query(engine)
    assert len(queries(sent)) == 2
    assert jumped["data"] == pages[1]["data"]
    assert jumped["pagination"]["next"] is not None
    assert get(client, "/api/stations?page_size=1&page=4")["data"] == []


def test_the_cache_is_keyed_by_query_and_representation(client, engine: Engine):
    one, other = (f"/api/weather?station_id={station}" for station in STATIONS[:2])

    sent = []
    for url, headers in [(one, {}), (other, {}), (one, {"Accept": "text/csv"}), (one, {})]:
        with statements_sent(client) as statements:
            response = client.get(url, headers=headers)
            response.get_data()  # a streamed CSV runs its query as it is read
        sent.append((response.mimetype, len(queries(statements))))

    assert sent == [
        ("application/json", 3),  # built: the version, the counts, the page
        ("application/json", 3),  # another query: built, not the first one's answer
        ("text/csv", 2),  # the version, then every row, streamed
        ("application/json", 1),  # the version: kept, apart from the CSV
    ]


def test_a_cache_budget_of_zero_builds_every_answer_afresh(engine: Engine, client):
    settings = load_settings(
        {
            "DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "WXHUB_API_CACHE_MB": "0",
        }
    )
    uncached = create_app(settings, engine=engine).test_client()
    url = f"/api/weather/stats?station_id={STATIONS[0]}"
    with statements_sent(uncached) as first_sent:
        first = uncached.get(url)
    with statements_sent(uncached) as again_sent:
        again = uncached.get(url)

    assert (first.status_code, again.status_code) == (200, 200)
    # The version with the total (one statement), and the page; then the version and the
    # page (a total is kept per data version even so).
    assert len(queries(first_sent)) == 2
    assert len(queries(again_sent)) == 2
    assert queries(again_sent)[0] == version_query(engine)
    assert (len(answer_cache(uncached)), answer_cache(uncached).size_bytes) == (0, 0)


def test_a_run_that_writes_makes_the_next_request_build_and_keep_the_new_answer(
    client, engine: Engine, tmp_path: Path
):
    url = f"/api/weather/stats?station_id={STATIONS[2]}"
    old = client.get(url)
    write_station(tmp_path / "fix", STATIONS[2], [noaa_line("19990615", 301, 150, 1234)])
    assert run_job(engine, "run", sources=resolve_sources([str(tmp_path / "fix")])) == EXIT_OK

    with statements_sent(client) as new_sent:
        new = client.get(url)
    with statements_sent(client) as again_sent:
        again = client.get(url)

    assert old.json["data"][0]["avg_max_temp_c"] == 30.0
    assert new.json["data"][0]["avg_max_temp_c"] == 30.1  # not the kept old answer
    # Built: the version (the filter's total was known at the old version, so it is read
    # alone), the total at the new version, the page.
    assert len(queries(new_sent)) == 3
    assert queries(again_sent) == [version_query(engine)]
    assert again.get_data() == new.get_data()
    # Both versions' answers are kept (the old one ages out of the LRU), byte for byte.
    cache = answer_cache(client)
    assert (len(cache), cache.size_bytes) == (2, len(old.get_data()) + len(new.get_data()))


def test_the_answer_cache_counts_the_bytes_of_every_answer_it_keeps(client):
    urls = [f"/api/weather?station_id={station}" for station in STATIONS]
    bodies = [client.get(url).get_data() for url in urls]
    cache = answer_cache(client)
    kept = (len(cache), cache.size_bytes)

    for url in urls:
        client.get(url)

    assert kept == (3, sum(map(len, bodies)))
    assert (len(cache), cache.size_bytes) == kept  # served from it, not added again


@pytest.mark.parametrize(
    ("setting", "budget"), [({}, 32 * 2**20), ({"WXHUB_API_CACHE_MB": "3"}, 3 * 2**20)]
)
def test_the_answer_cache_budget_is_wxhub_api_cache_mb_mebibytes(
    engine: Engine, setting: dict[str, str], budget: int
):
    settings = load_settings(
        {"DATABASE_URL": engine.url.render_as_string(hide_password=False), **setting}
    )

    cache = create_app(settings, engine=engine).extensions["wxhub.response_cache"]

    assert (cache.max_bytes, cache.size_bytes, len(cache)) == (budget, 0, 0)


def answer(size: int, fill: bytes = b"x") -> StoredResponse:
    return StoredResponse(fill * size, "application/json", ())


def kept(cache: ResponseCache, names: str) -> str:
    """Which of these one-letter keys the cache holds (reading them refreshes their age:
    call it last)."""
    return "".join(name for name in names if cache.get(name) is not None)


def test_the_response_cache_keeps_answers_up_to_an_eighth_of_its_budget_and_counts_their_bytes():
    cache = ResponseCache(max_bytes=1000)

    cache.put("a", answer(100))
    cache.put("b", answer(125))  # exactly an eighth: kept
    cache.put("c", answer(126))  # one byte more: never kept
    cache.put("d", answer(0))

    assert (cache.size_bytes, len(cache)) == (225, 3)
    assert kept(cache, "abcd") == "abd"


def test_a_new_answer_under_the_same_key_replaces_the_old_one_and_its_bytes():
    cache = ResponseCache(max_bytes=800)
    cache.put("a", answer(100))
    cache.put("b", answer(60))

    cache.put("a", answer(40, b"y"))

    assert (cache.size_bytes, len(cache)) == (100, 2)
    assert cache.get("a") == answer(40, b"y")


def test_the_response_cache_drops_the_least_recently_used_answers_until_within_its_budget():
    cache = ResponseCache(max_bytes=800)
    for name in "abcdefgh":
        cache.put(name, answer(100))
    full = (cache.size_bytes, len(cache))
    cache.get("a")  # now the most recently used

    cache.put("i", answer(100))
    after_one = (cache.size_bytes, len(cache))
    cache.put("j", answer(50))  # 850 bytes: drops the oldest, c
    cache.put("k", answer(100))  # 850 again: drops d
    cache.put("l", answer(100))  # 850 again: drops e

    assert full == (800, 8)  # exactly at the budget: nothing dropped
    assert after_one == (800, 8)  # b dropped, not a
    assert (cache.size_bytes, len(cache)) == (750, 8)
    assert kept(cache, "abcdefghijkl") == "afghijkl"


def test_one_large_answer_can_drop_several_small_ones():
    cache = ResponseCache(max_bytes=400)
    for name, size in [("a", 20), ("b", 30), ("c", 50), ("d", 50), ("e", 50)]:
        cache.put(name, answer(size))

    cache.put("f", answer(50))  # 250 bytes: within budget
    cache.put("g", answer(50))
    cache.put("h", answer(50))
    cache.put("i", answer(50))  # 400: still within
    cache.put("j", answer(50))  # 450: drops a (430), then b (400)

    assert (cache.size_bytes, len(cache)) == (400, 8)
    assert kept(cache, "abcdefghij") == "cdefghij"


def test_two_apps_on_two_databases_at_the_same_data_version_never_share_a_count(
    client, engine: Engine, tmp_path: Path
):
    other = make_engine(URL.create("sqlite", database=str(tmp_path / "other.db")))
    migrate.upgrade(other)
    for station in ("USC00000007", "USC00000008", "USC00000009"):
        write_station(tmp_path / "other", station, [noaa_line("20000101", 1, 0, 0)])
    assert run_job(other, "run", sources=resolve_sources([str(tmp_path / "other")])) == EXIT_OK
    settings = load_settings({"DATABASE_URL": other.url.render_as_string(hide_password=False)})
    other_client = create_app(settings, engine=other).test_client()
    with engine.connect() as conn, other.connect() as other_conn:
        versions = {
            c.execute(select(data_version.c.version)).scalar_one() for c in (conn, other_conn)
        }
    assert len(versions) == 1  # the same number, different data

    totals = {
        url: (
            get(client, url)["pagination"]["total"],
            get(other_client, url)["pagination"]["total"],
        )
        for url in ("/api/weather", "/api/weather/stats", "/api/stations")
    }

    # 10 days, 4 station-years, 3 stations in the fixture; 3 of each in the other database.
    assert totals == {
        "/api/weather": (10, 3),
        "/api/weather/stats": (4, 3),
        "/api/stations": (3, 3),
    }
    other.dispose()


def test_a_thread_s_kept_connection_is_reused_and_holds_no_transaction(client, engine: Engine):
    """Each serving thread keeps its connection between requests (api/db.py), and leaves no
    transaction open on it: on MySQL an open one would hold metadata locks that make a
    migration's ALTER TABLE wait, on SQLite a snapshot that pins the WAL."""
    assert client.get(f"/api/weather?station_id={STATIONS[0]}").status_code == 200
    kept = client.application.extensions["wxhub.connections"].get()
    assert client.get("/api/weather/stats").status_code == 200

    assert client.application.extensions["wxhub.connections"].get() is kept
    assert not kept.in_transaction()
    if engine.dialect.name == "sqlite":
        assert kept.connection.dbapi_connection.in_transaction is False  # type: ignore[union-attr]
        return
    with engine.connect() as other:
        other.exec_driver_sql("SET SESSION lock_wait_timeout = 5")
        # Waits for (and after 5 s fails on) any metadata lock a reader still holds.
        other.exec_driver_sql("ALTER TABLE data_version COMMENT = 'migrated'")
