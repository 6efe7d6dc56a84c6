"""The Dockerfile, .dockerignore and docker-compose.yml keep the promises of the deployment
contract. No Docker engine runs here, so these read the files; the image's entry points
themselves are exercised in test_image_entry_points.py."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.deploy import dockerfile
from wxhub.config import load_settings
from wxhub.db.tls import DEFAULT_CA_FILE, RDS_CA_BUNDLE_URL

DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


@pytest.fixture(scope="module")
def stages() -> list[dockerfile.Stage]:
    return dockerfile.parse(DOCKERFILE)


@pytest.fixture(scope="module")
def runtime(stages: list[dockerfile.Stage]) -> dockerfile.Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_the_image_is_built_in_two_stages_on_python_3_12_slim_pinned_by_digest(
    stages: list[dockerfile.Stage],
) -> None:
    assert len(stages) >= 2
    for stage in stages:
        # The tag says what it is, the digest which bytes: a rebuild of a commit gets the same.
        assert re.fullmatch(r"python:3\.12-slim(-\w+)?@sha256:[0-9a-f]{64}", stage.image), (
            stage.image
        )
    builder, runtime = stages[0], stages[-1]
    assert any("wheel" in i.arguments for i in builder.every("RUN"))
    assert any(f"from={builder.name}" in i.arguments for i in runtime.every("RUN")) or any(
        f"--from={builder.name}" in i.arguments for i in runtime.every("COPY")
    ), "the runtime stage installs what the builder built"


def test_the_image_ships_the_rds_ca_bundle_where_the_app_looks_for_it(
    runtime: dockerfile.Stage,
) -> None:
    fetched = [i.arguments.split() for i in runtime.every("ADD")]
    assert [args[-2:] for args in fetched] == [[RDS_CA_BUNDLE_URL, DEFAULT_CA_FILE]]
    assert "--chmod=644" in fetched[0]  # the non-root app user reads it


def test_the_runtime_stage_installs_no_compiler_and_keeps_no_pip_cache(
    runtime: dockerfile.Stage,
) -> None:
    commands = " ".join(i.arguments for i in runtime.every("RUN"))
    for tool in ("apt-get", "apk", "gcc", "build-essential", "python -m build"):
        assert tool not in commands
    assert runtime.env().get("PIP_NO_CACHE_DIR") == "1"


def test_the_image_runs_as_a_fixed_non_root_uid(runtime: dockerfile.Stage) -> None:
    user = runtime.last("USER").arguments
    uid = user.split(":")[0]
    if uid.startswith("${"):
        arg_defaults = dict(i.arguments.split("=", 1) for i in runtime.every("ARG"))
        uid = arg_defaults[uid.strip("${}")]
    assert uid.isdigit(), "numeric, so an orchestrator can check it is not root"
    assert int(uid) >= 1000


def test_the_default_command_is_the_api_and_the_port_is_8000(runtime: dockerfile.Stage) -> None:
    assert runtime.last("CMD").exec_form() == ["python", "-m", "wxhub.api"]
    assert runtime.last("EXPOSE").arguments == "8000"
    assert not runtime.every("ENTRYPOINT"), "the job replaces the command; no entrypoint wraps it"


def test_the_runtime_environment_is_the_containers_contract(runtime: dockerfile.Stage) -> None:
    env = runtime.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["WXHUB_LOG_FORMAT"] == "json"
    assert env["PORT"] == "8000"
    assert load_settings(env).log_format == "json", "wxhub.config accepts the image's settings"


def test_the_header_comment_documents_both_entry_points() -> None:
    header = DOCKERFILE.read_text().split("\nFROM", 1)[0]
    assert "python -m wxhub.api" in header
    assert "python -m wxhub.ingestion" in header


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output free of one access line per probe."""


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    _Health.status = 200


def _run_healthcheck(runtime: dockerfile.Stage, port: int) -> int:
    command = runtime.last("HEALTHCHECK").exec_form()
    assert command[0] == "python"
    env = {"PATH": os.environ["PATH"], "PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, check=False).returncode


def test_the_healthcheck_passes_on_a_healthz_200_and_fails_otherwise(
    runtime: dockerfile.Stage, health_server: http.server.HTTPServer
) -> None:
    port = health_server.server_address[1]
    assert "/healthz" in runtime.last("HEALTHCHECK").arguments
    assert _run_healthcheck(runtime, port) == 0
    _Health.status = 503
    assert _run_healthcheck(runtime, port) != 0
    health_server.shutdown()
    health_server.server_close()
    assert _run_healthcheck(runtime, port) != 0, "nothing listening"


def test_the_build_context_is_an_allow_list_of_the_package_sources() -> None:
    patterns = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "everything is out unless allowed back in"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert allowed == {"pyproject.toml", "README.md", "src"}
    copied = " ".join(i.arguments for i in dockerfile.parse(DOCKERFILE)[0].every("COPY"))
    for name in allowed:
        assert name in copied, f"{name} is in the context because the builder copies it"


def test_compose_runs_mysql_8_4_with_local_infile_a_healthcheck_and_a_named_volume(
    compose: dict[str, Any],
) -> None:
    db = compose["services"]["db"]
    assert db["image"] == "mysql:8.4"
    assert "--local-infile=1" in db["command"]
    assert db["healthcheck"]["test"][0] in ("CMD", "CMD-SHELL")
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"], "a named volume, not a host folder"


def test_compose_runs_the_api_from_this_dockerfile_after_the_database_is_healthy(
    compose: dict[str, Any],
) -> None:
    api = compose["services"]["api"]
    assert api["build"]["context"] == "."
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert "8000:8000" in api["ports"]
    assert "command" not in api, "the image's default command is the API"
    settings = load_settings(api["environment"])
    assert settings.database_url.host == "db"
    assert settings.database_url.get_backend_name() == "mysql"


def test_compose_runs_the_job_once_on_the_vendored_data_after_the_database_is_healthy(
    compose: dict[str, Any],
) -> None:
    job = compose["services"]["job"]
    assert job["command"] == ["python", "-m", "wxhub.ingestion", "/data/wx_data"]
    assert job["restart"] == "no"
    assert job["depends_on"]["db"]["condition"] == "service_healthy"
    assert "./data/wx_data:/data/wx_data:ro" in job["volumes"]
    assert (REPO_ROOT / "data" / "wx_data").is_dir()
    assert load_settings(job["environment"]).database_url.host == "db"


def test_compose_containers_run_with_a_read_only_root_and_an_init_process(
    compose: dict[str, Any],
) -> None:
    for name in ("api", "job"):
        service = compose["services"][name]
        assert service["read_only"] is True
        # The loader and gunicorn need a writable /tmp when the root is read-only.
        assert "/tmp" in service["tmpfs"]  # noqa: S108  (a container path, not a temp file)
        assert service["init"] is True, "python as PID 1 would ignore SIGTERM"


def _compose_plugin() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="the docker client has no compose plugin")
def test_docker_compose_accepts_the_file() -> None:
    subprocess.run(
        ["docker", "compose", "--file", str(COMPOSE_FILE), "config", "--quiet"],
        check=True,
        cwd=REPO_ROOT,
    )
