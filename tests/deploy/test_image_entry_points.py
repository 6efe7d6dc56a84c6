"""What the image does, without a Docker engine: build the wheel from the same files the
Dockerfile copies, install it into a fresh virtual environment (no editable install, no source
tree on the path), and run both entry points against a MariaDB database configured the way ECS
configures it (``DB_HOST``, ``DB_USER``, ... from the RDS secret), from a working directory
outside the repository.

The image runs Python 3.12; the venv is made with ``WXHUB_IMAGE_PYTHON`` when set (e.g. a
pyenv 3.12), else with ``python3.12`` when that runs, else with the Python running the tests.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import DATA_DIR, REPO_ROOT, throwaway_mysql_database
from tests.deploy import dockerfile

pytestmark = [pytest.mark.slow, pytest.mark.mysql]

IMAGE_PYTHON_VERSION = "3.12"
STATIONS = ("USC00110072", "USC00110187", "USC00110338")
STARTUP_TIMEOUT_S = 60
# gunicorn's graceful timeout is 30 s; an idle server stops in well under a second.
SHUTDOWN_TIMEOUT_S = 35


@dataclass(frozen=True)
class Installed:
    """A fresh virtual environment with only the wheel (and its dependencies) installed."""

    wheel: Path
    python: Path
    bin_dir: Path


@dataclass(frozen=True)
class Container:
    """The environment and working directory one container of the image would have."""

    env: dict[str, str]
    cwd: Path
    home: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """Build the wheel as the builder stage does, install it as the runtime stage does."""
    context = tmp_path_factory.mktemp("context")
    # The Dockerfile's build context: the .dockerignore allow-list.
    shutil.copy2(REPO_ROOT / "pyproject.toml", context)
    shutil.copy2(REPO_ROOT / "README.md", context)
    shutil.copytree(
        REPO_ROOT / "src",
        context / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.py[cod]", "*.egg-info"),
    )
    dist = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(context)])
    (wheel,) = dist.glob("wxhub-*.whl")

    venv = tmp_path_factory.mktemp("venv")
    _run([_image_python(), "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "--no-cache-dir", "--quiet", str(wheel)])
    return Installed(wheel=wheel, python=python, bin_dir=venv / "bin")


@pytest.fixture(scope="module")
def container(
    installed: Installed, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Container]:
    """An empty MariaDB database and the variables ECS would inject for it."""
    with throwaway_mysql_database() as url:
        home = tmp_path_factory.mktemp("home")
        env = {
            # Nothing from the developer's environment (no DATABASE_URL, no venv) leaks in.
            "PATH": f"{installed.bin_dir}{os.pathsep}/usr/bin:/bin",
            "HOME": str(home),
            "LANG": "C.UTF-8",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONUNBUFFERED": "1",
            "WXHUB_LOG_FORMAT": "json",
            "DB_HOST": url.host or "127.0.0.1",
            "DB_PORT": str(url.port or 3306),
            "DB_USER": url.username or "",
            "DB_PASSWORD": url.password or "",
            "DB_NAME": url.database or "",
        }
        yield Container(env=env, cwd=tmp_path_factory.mktemp("workdir"), home=home)


@pytest.fixture(scope="module")
def job_run(
    container: Container, tmp_path_factory: pytest.TempPathFactory
) -> subprocess.CompletedProcess[str]:
    """``python -m wxhub.ingestion`` on a few vendored station files, once per module."""
    source = tmp_path_factory.mktemp("wx_data")
    for station in STATIONS:
        shutil.copy2(DATA_DIR / f"{station}.txt", source)
    return subprocess.run(
        ["python", "-m", "wxhub.ingestion", str(source)],
        env=container.env,
        cwd=container.cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Api:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=10) as response:  # noqa: S310
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def log_records(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def api(
    container: Container,
    job_run: subprocess.CompletedProcess[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Api]:
    """``python -m wxhub.api`` on a free port, once the job has loaded the database."""
    assert job_run.returncode == 0, job_run.stderr
    server = _start_api(container, tmp_path_factory.mktemp("api") / "api.log")
    yield server
    _stop(server.process)


def _start_api(container: Container, log: Path) -> Api:
    port = _free_port()
    env = {**container.env, "PORT": str(port), "WEB_CONCURRENCY": "2"}
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["python", "-m", "wxhub.api"],
            env=env,
            cwd=container.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Api(process=process, base_url=f"http://127.0.0.1:{port}", log=log)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the API exited early:\n{log.read_text()}"
        try:
            if server.get("/healthz")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    _stop(process)
    pytest.fail(f"the API did not answer /healthz within {STARTUP_TIMEOUT_S} s:\n{log.read_text()}")


def _stop(process: subprocess.Popen[bytes]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=SHUTDOWN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


def _image_python() -> str:
    """The interpreter closest to the image's: see the module docstring."""
    chosen = os.environ.get("WXHUB_IMAGE_PYTHON", "").strip()
    if chosen:
        return chosen
    candidate = shutil.which(f"python{IMAGE_PYTHON_VERSION}")
    if candidate is not None:
        # A pyenv shim exists even where that version is not selected; it then fails.
        probe = subprocess.run([candidate, "-c", ""], capture_output=True, check=False)
        if probe.returncode == 0:
            return candidate
    return sys.executable


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"


def test_the_wheel_ships_the_migrations_and_nothing_but_the_package(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    assert "wxhub/db/migrations/env.py" in names
    assert "wxhub/db/migrations/script.py.mako" in names
    versions = [n for n in names if re.fullmatch(r"wxhub/db/migrations/versions/\d+_.*\.py", n)]
    assert versions, "the migrations' versions are in the wheel"
    top_level = {n.split("/")[0] for n in names}
    assert top_level == {"wxhub", f"{installed.wheel.name.split('-py')[0]}.dist-info"}


def test_the_job_entry_point_loads_the_files_and_ends_with_a_json_summary(
    job_run: subprocess.CompletedProcess[str], container: Container
) -> None:
    assert job_run.returncode == 0, job_run.stderr + job_run.stdout
    lines = [json.loads(line) for line in job_run.stdout.splitlines() if line.strip()]
    summary = lines[-1]
    assert summary["event"] == "summary"
    assert summary["status"] == "succeeded"
    assert summary["files_loaded"] == len(STATIONS)
    lines = sum((DATA_DIR / f"{station}.txt").read_bytes().count(b"\n") for station in STATIONS)
    assert summary["records_ingested"] == lines  # every line: the vendored files are clean
    assert not list(container.cwd.iterdir()), "MariaDB from DB_HOST, not ./wxhub.db"


def test_the_migrate_console_script_is_on_the_path_and_succeeds(
    job_run: subprocess.CompletedProcess[str], container: Container
) -> None:
    result = subprocess.run(
        ["wxhub", "migrate"],
        env=container.env,
        cwd=container.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_the_job_entry_point_exits_2_on_a_configuration_error(container: Container) -> None:
    env = {**container.env, "DB_PORT": "not-a-port"}
    result = subprocess.run(
        ["python", "-m", "wxhub.ingestion", str(DATA_DIR / f"{STATIONS[0]}.txt")],
        env=env,
        cwd=container.cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "DB_PORT" in result.stderr + result.stdout


def test_the_api_entry_point_is_live_and_ready(api: Api) -> None:
    assert api.get("/healthz") == (200, b'{"status":"ok"}\n')
    status, body = api.get("/readyz")
    assert status == 200, body
    assert json.loads(body)["status"] == "ready"


def test_the_images_healthcheck_command_passes_against_the_api(
    api: Api, installed: Installed, container: Container
) -> None:
    command = dockerfile.parse(REPO_ROOT / "Dockerfile")[-1].last("HEALTHCHECK").exec_form()
    port = urllib.parse.urlsplit(api.base_url).port
    env = {**container.env, "PORT": str(port)}
    assert subprocess.run(command, env=env, timeout=10, check=False).returncode == 0


def test_the_api_serves_the_loaded_weather_of_a_station(api: Api) -> None:
    status, body = api.get(f"/api/weather?station_id={STATIONS[0]}&page_size=5")
    assert status == 200, body
    items = json.loads(body)["data"]
    assert len(items) == 5
    assert {item["station_id"] for item in items} == {STATIONS[0]}


def test_the_api_serves_swagger_ui_with_its_own_assets(api: Api) -> None:
    status, body = api.get("/api/docs")
    assert status == 200
    page = body.decode()
    assets = [
        urllib.parse.urljoin("/api/docs", url)
        for url in re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page)
    ]
    assert any(a.endswith(".js") for a in assets), "Swagger UI's bundle is linked"
    assert all(a.startswith("/") for a in assets), "served by the app, not a CDN"
    for asset in assets:
        status, content = api.get(asset)
        assert status == 200, asset
        assert content, asset
    status, body = api.get("/api/openapi.json")
    assert status == 200
    assert json.loads(body)["openapi"].startswith("3.")


def test_the_api_logs_json_lines_only(api: Api) -> None:
    api.get("/healthz")
    records = api.log_records()  # raises on a line that is not JSON
    assert any(r.get("event") == "access" for r in records)
    assert not [r for r in records if r.get("level") in ("ERROR", "CRITICAL")]


def test_the_api_writes_nothing_under_home(api: Api, container: Container) -> None:
    assert not list(container.home.iterdir())


def test_sigterm_stops_the_api_cleanly(container: Container, tmp_path: Path) -> None:
    server = _start_api(container, tmp_path / "api.log")
    assert _stop(server.process) == 0
    records = server.log_records()
    assert not [r for r in records if r.get("level") in ("ERROR", "CRITICAL")], records
