"""Pagination checks that can fail: cursors tampered past their checksum, station page jumps
and totals, and date ranges that cut one year at both ends. SQLite and MariaDB.

Cursors are rebuilt here the way ``wxhub.api.pagination`` builds them (a JSON list, its
8-byte BLAKE2b checksum in front, URL-safe base64 without padding), so a tampered cursor
passes the checksum and reaches the checks of its fields.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import itertools
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy.engine import URL
from werkzeug.test import TestResponse

from tests.api.conftest import STATIONS
from tests.conftest import noaa_line, write_station
from wxhub.api.app import create_app
from wxhub.api.routes import stations as stations_route
from wxhub.config import load_settings
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import EXIT_OK, run_job

CHECKSUM_BYTES = 8


def get(client: FlaskClient, url: str, status: int = 200) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == status, response.get_data(as_text=True)
    return response.json  # type: ignore[return-value]


def follow(client: FlaskClient, url: str) -> list[dict[str, Any]]:
    """Every page from ``url`` on, following the next links."""
    pages = []
    next_url: str | None = url
    while next_url:
        body = get(client, next_url)
        pages.append(body)
        next_url = body["pagination"]["next"]
    return pages


def load(engine: Engine, folder: Path) -> None:
    assert run_job(engine, "run", sources=resolve_sources([str(folder)]), workers=0) == EXIT_OK


def app_client(engine: Engine) -> FlaskClient:
    settings = load_settings({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    return create_app(settings, engine=engine).test_client()


# -- cursors -------------------------------------------------------------------------------


def cursor_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["cursor"][0]


def cursor_fields(token: str) -> list[Any]:
    """[version, key, forward, page, filters digest], after checking the checksum."""
    raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    checksum, payload = raw[:CHECKSUM_BYTES], raw[CHECKSUM_BYTES:]
    assert hashlib.blake2b(payload, digest_size=CHECKSUM_BYTES).digest() == checksum
    fields = json.loads(payload)
    assert isinstance(fields, list)
    return fields


def make_cursor(fields: Any) -> str:
    payload = json.dumps(fields, separators=(",", ":")).encode()
    checksum = hashlib.blake2b(payload, digest_size=CHECKSUM_BYTES).digest()
    return base64.urlsafe_b64encode(checksum + payload).decode().rstrip("=")


WEATHER = "/api/weather?page_size=3"


def weather_cursor(client: FlaskClient) -> list[Any]:
    """The fields of the next link of the first page of WEATHER."""
    return cursor_fields(cursor_of(get(client, WEATHER)["pagination"]["next"]))


def test_a_cursor_rebuilt_the_way_the_code_builds_it_is_accepted(client):
    token = cursor_of(get(client, WEATHER)["pagination"]["next"])
    fields = cursor_fields(token)
    assert fields[:4] == [1, [STATIONS[0], "2001-01-01"], True, 2]

    # The same fields give the same token, and a key of our choosing is followed.
    assert make_cursor(fields) == token
    fields[1] = [STATIONS[1], "2001-01-01"]
    body = get(client, f"{WEATHER}&cursor={make_cursor(fields)}")

    assert [(i["station_id"], i["date"]) for i in body["data"]] == [
        (STATIONS[1], "2001-01-02"),
        (STATIONS[1], "2001-01-03"),
        (STATIONS[2], "1999-06-15"),
    ]
    assert body["pagination"]["page"] == 2


def _set(index: int, value: Any) -> Callable[[list[Any]], list[Any]]:
    def change(fields: list[Any]) -> list[Any]:
        fields[index] = value
        return fields

    return change


VERSION, KEY, FORWARD, PAGE = 0, 1, 2, 3

# Each a change of one field of a valid cursor (or of its shape); all in one test per
# backend, so the small database is loaded once, not once per case.
TAMPERED_FIELDS: dict[str, Callable[[list[Any]], Any]] = {
    "version 2": _set(VERSION, 2),
    "version 0": _set(VERSION, 0),
    "version as text": _set(VERSION, "1"),
    "version as boolean": _set(VERSION, True),
    "version null": _set(VERSION, None),
    "key too short": _set(KEY, [STATIONS[0]]),
    "key too long": _set(KEY, [STATIONS[0], "2001-01-01", 1]),
    "key empty": _set(KEY, []),
    "key as text": _set(KEY, f"{STATIONS[0]},2001-01-01"),
    "key as object": _set(KEY, {"station_id": STATIONS[0]}),
    "key station as number": _set(KEY, [1, "2001-01-01"]),
    "key station null": _set(KEY, [None, "2001-01-01"]),
    "key date as number": _set(KEY, [STATIONS[0], 20010101]),
    "key date impossible": _set(KEY, [STATIONS[0], "2001-02-30"]),
    "key date as boolean": _set(KEY, [STATIONS[0], True]),
    "page 0": _set(PAGE, 0),
    "page negative": _set(PAGE, -1),
    "page as text": _set(PAGE, "2"),
    "page fraction": _set(PAGE, 2.5),
    "page as boolean": _set(PAGE, True),
    "page null": _set(PAGE, None),
    "direction 1": _set(FORWARD, 1),
    "direction 0": _set(FORWARD, 0),
    "direction as text": _set(FORWARD, "true"),
    "direction null": _set(FORWARD, None),
    "four fields": lambda fields: fields[:4],
    "six fields": lambda fields: [*fields, 1],
    "an object": lambda fields: dict(enumerate(fields)),
}

# Wrong keys of a station cursor (one string key): the text "U" has the key's length.
TAMPERED_STATION_KEYS: dict[str, Any] = {
    "text of the key's length": "U",
    "number": [1],
    "null": [None],
    "nested list": [[STATIONS[0]]],
    "too long": [STATIONS[0], STATIONS[1]],
    "empty": [],
}


def not_a_cursor_problem(response: TestResponse) -> str | None:
    """None for a 400 problem+json naming the cursor; else what the answer was."""
    body = response.get_json(silent=True) or {}
    seen = (
        response.status_code,
        response.mimetype,
        body.get("status"),
        body.get("parameter"),
        bool(body.get("detail")),
    )
    if seen == (400, "application/problem+json", 400, "cursor", True):
        return None
    return f"{seen}: {response.get_data(as_text=True)[:300]}"


def test_a_cursor_with_a_wrong_field_is_a_400_problem_naming_the_cursor(client):
    fields = weather_cursor(client)

    answers = {
        case: not_a_cursor_problem(
            client.get(f"{WEATHER}&cursor={make_cursor(tamper(copy.deepcopy(fields)))}")
        )
        for case, tamper in TAMPERED_FIELDS.items()
    }

    wrong = {case: answer for case, answer in answers.items() if answer}
    assert list(wrong) == [], wrong


def test_a_station_cursor_with_a_wrong_key_is_a_400_problem_naming_the_cursor(client):
    url = "/api/stations?page_size=1"
    fields = cursor_fields(cursor_of(get(client, url)["pagination"]["next"]))
    assert fields[KEY] == [STATIONS[0]]

    answers = {
        case: not_a_cursor_problem(
            client.get(f"{url}&cursor={make_cursor([*fields[:KEY], key, *fields[KEY + 1 :]])}")
        )
        for case, key in TAMPERED_STATION_KEYS.items()
    }

    wrong = {case: answer for case, answer in answers.items() if answer}
    assert list(wrong) == [], wrong


# -- /api/stations: page jumps and totals --------------------------------------------------

MANY_STATIONS = tuple(f"USC00000{n:03d}" for n in range(101, 108))  # 7 stations


@pytest.fixture
def stations_client(engine: Engine, tmp_path: Path) -> FlaskClient:
    """Seven stations, the n-th with n days from 2005-01-01."""
    for n, station in enumerate(MANY_STATIONS, start=1):
        days = [dt.date(2005, 1, 1) + dt.timedelta(days=i) for i in range(n)]
        write_station(tmp_path / "in", station, [noaa_line(f"{d:%Y%m%d}", 1, 0, 0) for d in days])
    load(engine, tmp_path / "in")
    return app_client(engine)


def station_ids(body: dict[str, Any]) -> list[str]:
    return [item["station_id"] for item in body["data"]]


def test_jumping_to_station_page_n_gives_the_stations_of_that_page(stations_client):
    for page_size in (1, 2, 3, 6, 7, 10):
        pages = follow(stations_client, f"/api/stations?page_size={page_size}")

        expected = [
            list(MANY_STATIONS[i : i + page_size]) for i in range(0, len(MANY_STATIONS), page_size)
        ]
        assert [station_ids(page) for page in pages] == expected, f"page_size={page_size}"
        for number, page in enumerate(pages, start=1):
            jumped = get(stations_client, f"/api/stations?page_size={page_size}&page={number}")
            assert jumped["data"] == page["data"], f"page_size={page_size}, page={number}"
            assert (jumped["pagination"]["page"], jumped["pagination"]["total"]) == (number, 7)


@pytest.mark.parametrize("every", [1, 2, 3, 100])
def test_a_station_page_jump_lands_on_its_page_whatever_the_spacing_of_the_anchors(
    stations_client, monkeypatch: pytest.MonkeyPatch, every: int
):
    """Jumps start from every n-th station id (kept per data version) and skip the rest:
    the page is the same for any spacing, pages past the end included."""
    monkeypatch.setattr(stations_route, "ANCHOR_EVERY", every)
    for page_size in (1, 2, 3, 4):
        for number in range(1, 9 // page_size + 2):
            jumped = get(stations_client, f"/api/stations?page_size={page_size}&page={number}")
            start = (number - 1) * page_size
            expected = list(MANY_STATIONS[start : start + page_size])
            assert station_ids(jumped) == expected, (every, page_size, number)


def test_a_station_page_jump_has_exact_links_both_ways(stations_client):
    body = get(stations_client, "/api/stations?page_size=3&page=2")

    assert station_ids(body) == list(MANY_STATIONS[3:6])
    assert body["pagination"]["total"] == 7
    assert station_ids(get(stations_client, body["pagination"]["next"])) == [MANY_STATIONS[6]]
    assert station_ids(get(stations_client, body["pagination"]["prev"])) == list(MANY_STATIONS[:3])
    last = get(stations_client, "/api/stations?page_size=3&page=3")
    assert station_ids(last) == [MANY_STATIONS[6]]
    assert last["pagination"]["next"] is None
    assert last["data"][0]["observations"] == 7


def test_a_station_page_past_the_end_is_empty_with_the_total_and_a_link_to_the_last_page(
    stations_client,
):
    for page_size, page, last_page in ((3, 4, 3), (3, 50, 3), (7, 2, 1)):
        body = get(stations_client, f"/api/stations?page_size={page_size}&page={page}")

        assert body["data"] == []
        assert body["pagination"] == {
            "page": page,
            "page_size": page_size,
            "total": 7,
            "next": None,
            "prev": f"/api/stations?page_size={page_size}&page={last_page}",
        }
        assert get(stations_client, body["pagination"]["prev"])["data"]


def test_the_station_total_follows_a_run_that_adds_a_station(
    stations_client, engine: Engine, tmp_path: Path
):
    assert get(stations_client, "/api/stations?page_size=3")["pagination"]["total"] == 7

    write_station(tmp_path / "more", "USC00000099", [noaa_line("20050101", 1, 0, 0)])
    load(engine, tmp_path / "more")

    first = get(stations_client, "/api/stations?page_size=3")
    assert first["pagination"]["total"] == 8
    assert station_ids(first)[0] == "USC00000099"
    assert station_ids(get(stations_client, "/api/stations?page_size=3&page=3")) == list(
        MANY_STATIONS[5:]
    )


def test_totals_are_each_database_s_own_even_at_the_same_data_version(
    engine: Engine, tmp_path: Path
):
    # Two apps in one process, on two databases that reach the same data version (one file
    # and one aggregation each) with different data: one day, then two.
    write_station(tmp_path / "one", "USC00000001", [noaa_line("20050101", 1, 0, 0)])
    write_station(
        tmp_path / "two",
        "USC00000001",
        [noaa_line("20050101", 1, 0, 0), noaa_line("20050102", 1, 0, 0)],
    )
    other = make_engine(URL.create("sqlite", database=str(tmp_path / "other.db")))
    migrate.upgrade(other)
    load(engine, tmp_path / "one")
    load(other, tmp_path / "two")

    first = get(app_client(engine), "/api/weather")
    second = get(app_client(other), "/api/weather")

    assert (len(first["data"]), first["pagination"]["total"]) == (1, 1)
    assert (len(second["data"]), second["pagination"]["total"]) == (2, 2)
    other.dispose()


# -- /api/weather: a date range inside one year --------------------------------------------

WHOLE_YEAR, EVERY_THIRD_DAY = "USC00000201", "USC00000202"


def _every_day(first: dt.date, last: dt.date, step: int = 1) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(0, (last - first).days + 1, step)]


YEAR_DATA = {
    WHOLE_YEAR: _every_day(dt.date(2000, 12, 30), dt.date(2002, 1, 2)),
    EVERY_THIRD_DAY: [
        *_every_day(dt.date(2001, 1, 1), dt.date(2001, 12, 31), step=3),
        *_every_day(dt.date(2003, 5, 1), dt.date(2003, 5, 10)),
    ],
}


@pytest.fixture
def year_client(engine: Engine, tmp_path: Path) -> FlaskClient:
    """One station with every day of 2001 (and a few either side), one with every third day
    of 2001 and ten days of 2003."""
    for station, days in YEAR_DATA.items():
        write_station(tmp_path / "in", station, [noaa_line(f"{d:%Y%m%d}", 1, 0, 0) for d in days])
    load(engine, tmp_path / "in")
    return app_client(engine)


def expected_keys(start: dt.date, end: dt.date, stations: tuple[str, ...]) -> list[tuple[str, str]]:
    return [
        (station, day.isoformat())
        for station in sorted(stations)
        for day in YEAR_DATA[station]
        if start <= day <= end
    ]


def keys(pages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(item["station_id"], item["date"]) for page in pages for item in page["data"]]


RANGES = [
    (dt.date(2001, 3, 15), dt.date(2001, 10, 20)),
    (dt.date(2001, 2, 28), dt.date(2001, 3, 1)),
    (dt.date(2001, 6, 15), dt.date(2001, 6, 15)),
    (dt.date(2001, 1, 2), dt.date(2001, 12, 30)),
]


def test_a_date_range_inside_one_year_counts_and_pages_exactly(year_client):
    page_size = 50
    for (start, end), stations in itertools.product(
        RANGES, [(WHOLE_YEAR, EVERY_THIRD_DAY), (EVERY_THIRD_DAY,)]
    ):
        expected = expected_keys(start, end, stations)
        url = (
            f"/api/weather?station_id={','.join(stations)}&start_date={start}&end_date={end}"
            f"&page_size={page_size}"
        )

        pages = follow(year_client, url)

        assert keys(pages) == expected, url
        assert len(pages) == max(1, math.ceil(len(expected) / page_size)), url
        for number, page in enumerate(pages, start=1):
            jumped = get(year_client, f"{url}&page={number}")
            assert jumped["data"] == page["data"], f"{url}&page={number}"
            totals = (page["pagination"]["total"], jumped["pagination"]["total"])
            assert totals == (len(expected), len(expected)), f"{url}&page={number}"
        beyond = get(year_client, f"{url}&page={len(pages) + 1}")
        assert (beyond["data"], beyond["pagination"]["total"]) == ([], len(expected)), url


def test_the_date_range_totals_are_the_exact_day_counts(year_client):
    url = "/api/weather?start_date=2001-03-15&end_date=2001-10-20&page_size=1"

    # 15 March to 20 October 2001: 220 days; every third day from 1 January: 73 of them.
    assert get(year_client, url)["pagination"]["total"] == 220 + 73
    assert get(year_client, f"{url}&station_id={WHOLE_YEAR}")["pagination"]["total"] == 220
    assert get(year_client, f"{url}&station_id={EVERY_THIRD_DAY}")["pagination"]["total"] == 73
