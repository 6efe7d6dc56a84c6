"""Pagination over the real 1.7M-row data set: a jump to page N lands where OFFSET would."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, select
from sqlalchemy.engine import URL

from tests.conftest import DATA_DIR, throwaway_mysql_database
from wxhub.api.app import create_app
from wxhub.config import load_settings
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.db.schema import weather_observations as obs
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import run_job

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def full_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    if request.param == "sqlite":
        url = URL.create("sqlite", database=str(tmp_path_factory.mktemp("full") / "wxhub.db"))
        engine = make_engine(url)
        migrate.upgrade(engine)
        assert run_job(engine, "run", sources=resolve_sources([str(DATA_DIR)])) == 0
        yield engine
        engine.dispose()
        return
    with throwaway_mysql_database() as url:
        engine = make_engine(url)
        assert run_job(engine, "run", sources=resolve_sources([str(DATA_DIR)])) == 0
        yield engine
        engine.dispose()


@pytest.fixture(scope="module")
def client(full_engine: Engine) -> FlaskClient:
    settings = load_settings(
        {"DATABASE_URL": full_engine.url.render_as_string(hide_password=False)}
    )
    return create_app(settings, engine=full_engine).test_client()


def offset_reference(engine: Engine, offset: int, limit: int, *conditions: object) -> list[str]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(obs.c.station_id, obs.c.obs_date)
            .where(*conditions)  # type: ignore[arg-type]
            .order_by(obs.c.station_id, obs.c.obs_date)
            .limit(limit)
            .offset(offset)
        )
        return [f"{station_id} {day.isoformat()}" for station_id, day in rows]


def keys(body: dict) -> list[str]:
    return [f"{item['station_id']} {item['date']}" for item in body["data"]]


def test_the_unfiltered_total_is_every_row(client: FlaskClient):
    assert client.get("/api/weather").json["pagination"]["total"] == 1_729_957


@pytest.mark.parametrize("page", [2, 109, 5_000, 17_000, 17_300])
def test_jumping_to_a_page_lands_where_offset_would(client, full_engine, page):
    body = client.get(f"/api/weather?page={page}&page_size=100").json

    assert keys(body) == offset_reference(full_engine, (page - 1) * 100, 100)


def test_the_last_page_has_no_next_and_the_one_after_is_empty(client):
    last = client.get("/api/weather?page=17300&page_size=100").json
    beyond = client.get("/api/weather?page=17301&page_size=100").json

    assert len(last["data"]) == 57
    assert last["pagination"]["next"] is None
    assert beyond["data"] == []


def test_a_jump_within_a_date_range_lands_where_offset_would(client, full_engine):
    url = "/api/weather?start_date=1990-07-15&end_date=1996-03-02&page_size=250&page=777"
    body = client.get(url).json

    window = obs.c.obs_date.between(dt.date(1990, 7, 15), dt.date(1996, 3, 2))
    assert keys(body) == offset_reference(full_engine, 776 * 250, 250, window)
    following = client.get(body["pagination"]["next"]).json
    assert keys(following) == offset_reference(full_engine, 777 * 250, 250, window)


def test_the_csv_export_streams_all_rows(client: FlaskClient):
    response = client.get("/api/weather?format=csv")
    lines = 0
    for chunk in response.response:  # type: ignore[union-attr]
        lines += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")

    assert lines == 1_729_957 + 1
