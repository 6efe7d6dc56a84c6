"""Every test that touches a database runs against a real SQLite file and a real MariaDB/MySQL.

The MySQL server comes from ``WXHUB_TEST_MYSQL_URL`` (default: root on 127.0.0.1:3306); each
test gets a throwaway database of its own. Without a server the MySQL half skips with the
reason, except under ``CI=true``, where a missing server is an error: CI must never go green
on SQLite alone.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import URL, make_url

from wxhub.cli import main as wxhub_main
from wxhub.db import migrate
from wxhub.db.engine import make_engine

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data" / "wx_data"
MYSQL_SERVER_URL = os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
AWS_REGION = "eu-west-1"


def _mysql_server() -> tuple[URL | None, str]:
    url = make_url(MYSQL_SERVER_URL)
    try:
        probe = create_engine(url, connect_args={"connect_timeout": 5})
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
        probe.dispose()
    except Exception as exc:
        return None, f"no MySQL/MariaDB server at {url.render_as_string(hide_password=True)}: {exc}"
    return url, ""


_SERVER: tuple[URL | None, str] | None = None


def mysql_server_url() -> URL:
    """The server URL, or skip (locally) / fail (in CI) when there is none."""
    global _SERVER  # noqa: PLW0603  (probe the server once per session)
    if _SERVER is None:
        _SERVER = _mysql_server()
    url, reason = _SERVER
    if url is None:
        if IN_CI:
            pytest.fail(f"CI=true but {reason}; .ci/run must start MariaDB")
        pytest.skip(reason)
    return url


@pytest.fixture
def mysql_database() -> Iterator[URL]:
    """A fresh, empty database on the MySQL server, dropped afterwards."""
    with throwaway_mysql_database() as url:
        yield url


@contextmanager
def throwaway_mysql_database() -> Iterator[URL]:
    """A fresh, empty database on the MySQL server while the block runs."""
    server = mysql_server_url()
    name = f"wxhub_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE DATABASE {name} CHARACTER SET utf8mb4"))
    try:
        yield server.set(database=name)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> URL:
    """An empty database of each backend: a SQLite file, then a MySQL database."""
    if request.param == "sqlite":
        return URL.create("sqlite", database=str(tmp_path / "wxhub.db"))
    return request.getfixturevalue("mysql_database")


@pytest.fixture
def engine(db_url: URL) -> Iterator[Engine]:
    """An engine on a migrated, empty database of each backend."""
    eng = make_engine(db_url)
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


def write_station(
    folder: Path,
    station_id: str,
    lines: list[str] | str,
    *,
    gz: bool = False,
    raw: bytes | None = None,
) -> Path:
    """Write a station file; ``lines`` are joined with LF and end with one."""
    folder.mkdir(parents=True, exist_ok=True)
    if raw is None:
        content = lines if isinstance(lines, str) else "\n".join(lines) + "\n"
        raw = content.encode()
    path = folder / f"{station_id}.txt{'.gz' if gz else ''}"
    path.write_bytes(gzip.compress(raw) if gz else raw)
    return path


def noaa_line(date: str, tmax: int, tmin: int, prcp: int) -> str:
    """A line exactly as NOAA writes it: right-aligned numbers in 5-character fields."""
    return f"{date}\t{tmax:>5}\t{tmin:>5}\t{prcp:>5}"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto's in-process S3, Secrets Manager and SSM, with fake credentials: no account, no
    network, and no way to reach a real AWS account from a test."""
    from moto import mock_aws  # noqa: PLC0415  (only the AWS tests need it)

    fake = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": AWS_REGION,
        "AWS_DEFAULT_REGION": AWS_REGION,
    }
    for name, value in fake.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield


@pytest.fixture
def wxhub_in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """Run ``wxhub ARGS...`` in this process (so moto's fakes apply), JSON logs captured.

    The environment holds no database or wxhub setting but those given in ``env``.
    """
    for name in list(os.environ):
        if (
            name.startswith(("DATABASE_URL", "DATABASE_READ_URL", "DB_", "WXHUB_"))
            and name != "WXHUB_TEST_MYSQL_URL"
        ):
            monkeypatch.delenv(name)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(
            wxhub_main, list(args), env={"WXHUB_LOG_FORMAT": "json", **(env or {})}
        )

    yield invoke
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def bench_module(name: str) -> ModuleType:
    """A script of bench/ as a module (bench/ is a folder of scripts, not a package): the
    generators of synthetic data, for their own tests and for tests that need real-size files."""
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "bench" / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module
