"""The small fixture every API test module shares: three stations with edge cases."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine

from tests.conftest import noaa_line, write_station
from wxhub.api.app import create_app
from wxhub.config import load_settings
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import run_job

STATIONS = ("USC00000001", "USC00000002", "USC00000003")


def _days(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(count)]


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> FlaskClient:
    """Three stations: 1 has 2000-12-30..2001-01-04, 2 has 2001-01-01..2001-01-03 with gaps
    in values, 3 has one day in 1999."""
    folder = tmp_path / "in"
    write_station(
        folder,
        STATIONS[0],
        [
            noaa_line(d.strftime("%Y%m%d"), 10 + i, -10 - i, i)
            for i, d in enumerate(_days(dt.date(2000, 12, 30), 6))
        ],
    )
    write_station(
        folder,
        STATIONS[1],
        [
            noaa_line("20010101", 255, -9999, 17),
            noaa_line("20010102", -9999, -9999, -9999),
            noaa_line("20010103", -31, -9999, 0),
        ],
    )
    write_station(folder, STATIONS[2], [noaa_line("19990615", 300, 150, 1234)])
    assert run_job(engine, "run", sources=resolve_sources([str(folder)])) == 0
    settings = load_settings({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    return create_app(settings, engine=engine).test_client()
