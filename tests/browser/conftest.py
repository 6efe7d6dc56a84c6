"""A real server and a real headless Chromium for the station explorer's browser tests.

Selenium drives Debian's ``chromium`` through Debian's ``chromium-driver``: the two come
from one source package, so their versions always match, and with the driver's path given
Selenium never runs Selenium Manager (which would download a driver). Playwright would need
Node or its own browser build beside the Python tests; Selenium is one pip package.

Without Chromium the tests skip with the reason, except under ``CI=true``, where they fail:
CI must install it (``apt-get install chromium chromium-driver``). Where Debian's packages do
not exist (GitHub's Ubuntu runners, whose ``chromium-browser`` is a snap shim), a matching
browser and driver are named by ``WXHUB_TEST_CHROMIUM`` and ``WXHUB_TEST_CHROMEDRIVER``
(.github/workflows/ci.yml installs Chrome for Testing with its ChromeDriver and sets both).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from sqlalchemy import Engine, insert
from sqlalchemy.engine import URL
from werkzeug.serving import BaseWSGIServer, make_server

from tests.conftest import IN_CI, noaa_line, write_station
from wxhub.api.app import create_app
from wxhub.config import load_settings
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.db.schema import bump_data_version, stations
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import run_job

CHROMIUM = Path(os.environ.get("WXHUB_TEST_CHROMIUM") or "/usr/bin/chromium")
CHROMEDRIVER = Path(os.environ.get("WXHUB_TEST_CHROMEDRIVER") or "/usr/bin/chromedriver")
LOCAL_HOSTS = ("127.0.0.1", "localhost")
LOCAL_SCHEMES = ("data", "blob")
# Collects what the page's Content-Security-Policy blocked, as window.cspViolations.
CSP_VIOLATION_RECORDER = (
    "window.cspViolations = [];"
    "document.addEventListener('securitypolicyviolation', (e) =>"
    " window.cspViolations.push(`${e.effectiveDirective} ${e.blockedURI}`));"
)


def require_chromium() -> None:
    """Skip (locally) or fail (in CI) when Chromium or its driver is missing."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        reason = (
            f"{' and '.join(missing)} not installed; "
            "apt-get install -y chromium chromium-driver to run the browser tests, or name "
            "another browser and its driver in WXHUB_TEST_CHROMIUM and WXHUB_TEST_CHROMEDRIVER"
        )
        if IN_CI:
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)


# ---- the fixture data -------------------------------------------------------------------

WITH_GAPS = "USC00000001"
ONE_YEAR = "USC00000002"
OTHER_NETWORK = "USW00000003"


def _days(first: dt.date, count: int) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range(count)]


def _line(day: dt.date, tmax: int, tmin: int, prcp: int) -> str:
    return noaa_line(day.strftime("%Y%m%d"), tmax, tmin, prcp)


def write_fixture_stations(folder: Path) -> None:
    """Three stations. WITH_GAPS covers 2000-2004 with no file lines at all for 2003,
    every maximum temperature missing in 2002, and in 2001 forty calendar days from
    1 January of which 20 January is absent and 5 January has no precipitation."""
    lines = [
        _line(day, 100 + i, -50 - i, 10) for i, day in enumerate(_days(dt.date(2000, 1, 1), 10))
    ]
    for i, day in enumerate(_days(dt.date(2001, 1, 1), 40)):
        if day == dt.date(2001, 1, 20):
            continue
        lines.append(_line(day, 50 + i, -20 - i, -9999 if day == dt.date(2001, 1, 5) else i))
    lines += [_line(day, -9999, -30, 5) for day in _days(dt.date(2002, 6, 1), 5)]
    lines += [_line(day, 200, 100, 0) for day in _days(dt.date(2004, 7, 1), 3)]
    write_station(folder, WITH_GAPS, lines)
    write_station(
        folder, ONE_YEAR, [_line(day, 300, 150, 20) for day in _days(dt.date(1999, 3, 1), 3)]
    )
    write_station(
        folder, OTHER_NETWORK, [_line(day, 10, 0, 0) for day in _days(dt.date(2010, 1, 1), 2)]
    )


# NOAA's metadata of two of them, as the metadata loader writes it; OTHER_NETWORK has none.
METADATA = {
    WITH_GAPS: {"name": "GAPPY CREEK", "latitude": "41.0000", "longitude": "-90.0000"},
    ONE_YEAR: {"name": "SINGLE YEAR FARM", "latitude": "40.0000", "longitude": "-85.0000"},
}


def load_fixture_metadata(engine: Engine) -> None:
    rows = [
        {
            "station_id": station_id,
            "country_code": station_id[:2],
            "latitude": Decimal(fields["latitude"]),
            "longitude": Decimal(fields["longitude"]),
            "elevation_m": None,
            "state": None,
            "name": fields["name"],
            "gsn_flag": None,
            "hcn_crn_flag": None,
            "wmo_id": None,
        }
        for station_id, fields in METADATA.items()
    ]
    with engine.begin() as conn:
        conn.execute(insert(stations), rows)
        bump_data_version(conn)


# ---- the server -------------------------------------------------------------------------


@dataclass
class Server:
    base_url: str
    server: BaseWSGIServer
    thread: threading.Thread


def start_server(app: Flask) -> Server:
    """The app on a free port of 127.0.0.1, in a thread, as a browser reaches it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="explorer-test-server")
    thread.daemon = True
    thread.start()
    return Server(f"http://127.0.0.1:{server.server_port}", server, thread)


def stop_server(running: Server) -> None:
    running.server.shutdown()
    running.thread.join(timeout=10)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a server over a SQLite database of the fixture stations and the
    metadata of two of them."""
    require_chromium()
    root = tmp_path_factory.mktemp("explorer")
    write_fixture_stations(root / "in")
    url = URL.create("sqlite", database=str(root / "wxhub.db"))
    engine = make_engine(url)
    migrate.upgrade(engine)
    assert run_job(engine, "run", sources=resolve_sources([str(root / "in")])) == 0
    load_fixture_metadata(engine)
    settings = load_settings({"DATABASE_URL": url.render_as_string(hide_password=False)})
    running = start_server(create_app(settings, engine=engine))
    yield running.base_url
    stop_server(running)
    engine.dispose()


@pytest.fixture(scope="session")
def served_without_metadata(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a server over the fixture stations' data alone, no metadata (what
    the vendored data gives before the station metadata is loaded)."""
    require_chromium()
    root = tmp_path_factory.mktemp("explorer-without-metadata")
    write_fixture_stations(root / "in")
    url = URL.create("sqlite", database=str(root / "wxhub.db"))
    engine = make_engine(url)
    migrate.upgrade(engine)
    assert run_job(engine, "run", sources=resolve_sources([str(root / "in")])) == 0
    settings = load_settings({"DATABASE_URL": url.render_as_string(hide_password=False)})
    running = start_server(create_app(settings, engine=engine))
    yield running.base_url
    stop_server(running)
    engine.dispose()


@pytest.fixture(scope="session")
def served_without_database() -> Iterator[str]:
    """The base URL of a server whose database does not answer (a closed port)."""
    require_chromium()
    settings = load_settings({"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_PASSWORD": "pw"})
    running = start_server(create_app(settings))
    yield running.base_url
    stop_server(running)


# ---- the browser ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """One headless Chromium for the session; each test drains its logs first."""
    require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1000",
        # Chromium's own traffic (updates, safe browsing) is not the page's, but keep it off.
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        # Belt and braces for "offline": no name resolves but the loopback address.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    ):
        options.add_argument(argument)
    # Every request the page makes (performance log) and every console message.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    # Runs before the page's own scripts in every document, outside the page's CSP.
    driver.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": CSP_VIOLATION_RECORDER},
    )
    yield driver
    driver.quit()


@dataclass
class Browser:
    """The session's Chromium, with what this test's pages requested and logged."""

    driver: Any
    requests: list[str]
    console: list[dict[str, Any]]

    def drain_logs(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append(message["params"]["request"]["url"])
            elif message["method"] == "Network.webSocketCreated":
                self.requests.append(message["params"]["url"])
        self.console.extend(self.driver.get_log("browser"))

    def off_host_requests(self) -> list[str]:
        """Every request that went (or tried to go) anywhere but this machine."""
        self.drain_logs()
        off = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in LOCAL_SCHEMES:
                continue
            if parts.scheme not in ("http", "https") or parts.hostname not in LOCAL_HOSTS:
                off.append(url)
        return off

    def errors(self) -> list[str]:
        """Console errors: a CSP violation, a failed request, an exception in the script."""
        self.drain_logs()
        return [entry["message"] for entry in self.console if entry["level"] == "SEVERE"]


@pytest.fixture
def browser(chromium: Any) -> Browser:
    """The session's Chromium at desktop size, its logs emptied of earlier tests."""
    chromium.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    chromium.get("about:blank")
    chromium.get_log("performance")
    chromium.get_log("browser")
    return Browser(chromium, [], [])
