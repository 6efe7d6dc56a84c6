"""The API while its database goes away and comes back (MariaDB behind a proxy the test
cuts): readiness turns 503, data endpoints answer 503 problem documents with Retry-After in
bounded time, and service resumes by itself, without a restart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import URL

from tests.conftest import noaa_line, write_station
from tests.tcp_proxy import TcpProxy, proxy_to
from wxhub.api.app import API_DB_CONNECT_TIMEOUT_S, API_DB_READ_TIMEOUT_S, create_app
from wxhub.api.errors import PROBLEM_JSON, RETRY_AFTER_S
from wxhub.config import load_settings
from wxhub.db.engine import make_engine
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import run_job

pytestmark = pytest.mark.mysql

STATION = "USC00000001"
DATA = f"/api/weather?station_id={STATION}"
# A bounded answer: the timeout that applies, plus room for a busy 2-core CI machine.
SLACK_S = 5


@pytest.fixture
def outage(mysql_database: URL, tmp_path: Path) -> Iterator[tuple[TcpProxy, FlaskClient]]:
    """An API whose MariaDB database (one station loaded) is reached through a proxy."""
    folder = tmp_path / "in"
    write_station(folder, STATION, [noaa_line("20000101", 10, -10, 0)])
    loader = make_engine(mysql_database)
    assert run_job(loader, "run", sources=resolve_sources([str(folder)])) == 0
    loader.dispose()
    with proxy_to(mysql_database) as proxy:
        url = proxy.url_for(mysql_database).render_as_string(hide_password=False)
        yield proxy, create_app(load_settings({"DATABASE_URL": url})).test_client()


def timed_get(client: FlaskClient, path: str) -> tuple[int, float, dict[str, str]]:
    started = time.monotonic()
    response = client.get(path)
    return response.status_code, time.monotonic() - started, dict(response.headers)


def assert_unavailable(client: FlaskClient, path: str, bound_s: float) -> None:
    started = time.monotonic()
    response = client.get(path)
    elapsed = time.monotonic() - started

    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert elapsed < bound_s


def test_an_api_started_while_the_database_is_down_serves_once_it_is_back(outage):
    proxy, client = outage
    proxy.cut()

    assert_unavailable(client, "/readyz", API_DB_CONNECT_TIMEOUT_S + SLACK_S)
    assert_unavailable(client, DATA, API_DB_CONNECT_TIMEOUT_S + SLACK_S)
    assert client.get("/healthz").status_code == 200  # the process itself is fine

    proxy.restore()
    assert client.get("/readyz").status_code == 200
    assert client.get(DATA).json["data"][0]["station_id"] == STATION


def test_a_database_that_goes_away_while_serving_is_a_503_then_service_resumes(outage):
    proxy, client = outage
    assert client.get(DATA).status_code == 200  # pooled connections now exist

    proxy.cut()
    assert_unavailable(client, "/readyz", API_DB_CONNECT_TIMEOUT_S + SLACK_S)
    assert_unavailable(client, DATA, API_DB_CONNECT_TIMEOUT_S + SLACK_S)
    assert_unavailable(client, "/api/stations", API_DB_CONNECT_TIMEOUT_S + SLACK_S)

    proxy.restore()
    assert client.get("/readyz").status_code == 200
    assert client.get(DATA).status_code == 200
    assert client.get("/api/weather/stats").status_code == 200


def test_a_database_that_stops_answering_is_a_503_within_the_read_timeout(outage):
    proxy, client = outage
    assert client.get(DATA).status_code == 200

    proxy.stall()  # connections stay open; nothing comes back
    # At worst two waits: the pool's liveness ping of the pooled connection, then the
    # handshake of the fresh connection it opens instead.
    bound_s = 2 * API_DB_READ_TIMEOUT_S + SLACK_S
    assert_unavailable(client, DATA, bound_s)
    assert_unavailable(client, "/readyz", bound_s)

    proxy.cut()
    proxy.restore()
    assert client.get(DATA).status_code == 200


@pytest.mark.parametrize(
    "path",
    [DATA, f"/api/weather/stats?station_id={STATION}"],
    ids=["version read alone", "version read with a total"],
)
def test_a_kept_connection_the_server_dropped_is_replaced_without_an_error(outage, path):
    """A restart between two requests: the next request's first read (the data version,
    alone or with a statistics total) fails on the dead connection and is tried once more on
    a fresh one, as the pool's pre-ping would have done."""
    proxy, client = outage
    assert client.get("/api/stations").status_code == 200  # this thread keeps a connection

    proxy.cut()
    proxy.restore()
    response = client.get(path)

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.json["data"][0]["station_id"] == STATION
