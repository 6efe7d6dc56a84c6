"""The checks .ci/run makes of itself fail when what they guard is wrong.

.ci/smoke.py (the job's summary line, who serves the port, the API's answers) and
.ci/known_skips.py (no skip but the known ones) run here as .ci/run runs them, as scripts, on
planted input: a wrong count, a stale server, a wrong value, an unexplained skip. A check that
could never fail would be worse than none.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

SMOKE = REPO_ROOT / ".ci" / "smoke.py"
KNOWN_SKIPS = REPO_ROOT / ".ci" / "known_skips.py"
STATS_1985 = "/api/weather/stats?station_id=USC00110072&year=1985"
UPLOT = "/explorer/vendor/uPlot.iife.min.js"
COMPOSE_TEST = "tests.deploy.test_container_files::test_docker_compose_accepts_the_file"


def run(*args: str | Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *map(str, args)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# ---- the job's summary line --------------------------------------------------------------


def _log(**counts: object) -> str:
    summary = {"event": "summary", "status": "succeeded", **counts}
    # make echoes its command first: not JSON, passed over.
    return ".venv/bin/wxhub run data/wx_data\n" + json.dumps(summary) + "\n"


def test_the_summary_check_names_every_count_that_differs() -> None:
    log = _log(files_loaded=0, files_skipped=167, records_ingested=0)

    result = run(SMOKE, "summary", "files_loaded=167", "records_ingested=1729957", stdin=log)

    assert result.returncode == 1
    assert "summary: files_loaded is 0, expected 167" in result.stderr
    assert "summary: records_ingested is 0, expected 1729957" in result.stderr


def test_the_summary_check_passes_and_prints_the_line_when_every_count_matches() -> None:
    log = _log(files_loaded=167, records_ingested=1729957)

    result = run(SMOKE, "summary", "status=succeeded", "files_loaded=167", stdin=log)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["files_loaded"] == 167


def test_the_summary_check_fails_on_a_log_without_a_summary_line() -> None:
    result = run(SMOKE, "summary", "files_loaded=167", stdin="not json\n{}\n")

    assert result.returncode == 1
    assert "no summary line" in result.stderr


# ---- who listens on the port -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def stale_server() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A `python -m http.server` on a free port, a child of this test process."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_until_listening(port)
        yield port, server
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_busy_port_fails_the_port_check_naming_the_process(
    stale_server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    port, server = stale_server

    result = run(SMOKE, "port-free", str(port))

    assert result.returncode == 1
    assert f"port {port} is already in use by pid {server.pid} (" in result.stderr
    assert "http.server" in result.stderr


def test_a_free_port_passes_the_port_check() -> None:
    assert run(SMOKE, "port-free", str(_free_port())).returncode == 0


def test_a_server_outside_the_started_process_tree_is_refused(
    stale_server: tuple[int, subprocess.Popen[bytes]],
) -> None:
    """The server is this test's child: it serves for this process, not for an unrelated one
    (a sleeping process standing in for the `make run` of another checkout)."""
    port, server = stale_server
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        refused = run(SMOKE, "served-by", str(port), str(other.pid))
    finally:
        other.kill()
        other.wait(timeout=10)
    accepted = run(SMOKE, "served-by", str(port), str(os.getpid()))

    assert refused.returncode == 1
    assert f"is answered by pid {server.pid} (" in refused.stderr
    assert "not the server `make run` started" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr


def test_a_port_nobody_listens_on_is_not_served_by_anyone() -> None:
    result = run(SMOKE, "served-by", str(_free_port()), str(os.getpid()))

    assert result.returncode == 1
    assert "nothing listens on port" in result.stderr


# ---- the API's answers -------------------------------------------------------------------

# Answers of a server whose data is wrong in one value, and whose uPlot is served as text.
WRONG_ANSWERS: dict[str, tuple[str, bytes]] = {
    STATS_1985: (
        "application/json",
        json.dumps(
            {
                "data": [
                    {
                        "station_id": "USC00110072",
                        "year": 1985,
                        "avg_max_temp_c": 15.3,
                        "avg_min_temp_c": 4.33,
                        "total_precipitation_cm": 78.01,
                    }
                ],
                "pagination": {"page": 1, "total": 1, "next": None, "prev": None},
            }
        ).encode(),
    ),
    UPLOT: ("text/plain", b"/*! https://github.com/leeoniya/uPlot (v1.6.32) */\nvar uPlot=1"),
    "/api/openapi.json": ("application/json", b"<html>not JSON</html>"),
}


class _WrongApi(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        media_type, body = WRONG_ANSWERS.get(self.path, ("text/plain", b"not here"))
        self.send_response(200 if self.path in WRONG_ANSWERS else 404)
        self.send_header("Content-Type", f"{media_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the checker's output, not the server's."""


@pytest.fixture
def wrong_api() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WrongApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    thread.join(timeout=10)
    server.server_close()


def test_the_api_check_names_a_wrong_value_a_wrong_type_a_wrong_shape_and_a_missing_page(
    wrong_api: int,
) -> None:
    result = run(SMOKE, "api", str(wrong_api))

    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert (
        f"smoke: GET {STATS_1985}: first row's avg_max_temp_c is 15.3, expected 15.33" in problems
    )
    assert f"smoke: GET {UPLOT}: Content-Type 'text/plain', expected 'text/javascript'" in problems
    assert any(
        p.startswith("smoke: GET /api/openapi.json: not the expected shape") for p in problems
    )
    assert any(p.startswith("smoke: GET /api/stations: status 404") for p in problems)
    assert f"s {STATS_1985}: WRONG" in result.stdout


# ---- the known skips ---------------------------------------------------------------------


def _report(path: Path, *cases: tuple[str, str, str | None]) -> Path:
    """A JUnit XML report as pytest writes it: (classname, name, skip message or None)."""
    body = []
    for classname, name, message in cases:
        skipped = "" if message is None else f'<skipped type="pytest.skip" message="{message}"/>'
        body.append(f'<testcase classname="{classname}" name="{name}">{skipped}</testcase>')
    path.write_text(
        f'<testsuites><testsuite name="pytest">{"".join(body)}</testsuite></testsuites>'
    )
    return path


def test_an_unknown_skip_fails_and_a_known_one_is_listed_with_its_reason(tmp_path: Path) -> None:
    classname, name = COMPOSE_TEST.split("::")
    report = _report(
        tmp_path / "tests.xml",
        (classname, name, "the docker client has no compose plugin"),
        ("tests.deploy.test_run_migrations", "test_x", "the script needs jq"),
        ("tests.test_cli", "test_y", None),
    )

    result = run(KNOWN_SKIPS, report)

    assert result.returncode == 1
    assert f"{COMPOSE_TEST}: the docker client has no compose plugin (why: " in result.stdout
    assert (
        "known-skips: tests.deploy.test_run_migrations::test_x skipped (the script needs jq)"
        in result.stderr
    )
    assert COMPOSE_TEST not in result.stderr


def test_a_known_test_skipping_for_another_reason_fails(tmp_path: Path) -> None:
    classname, name = COMPOSE_TEST.split("::")
    report = _report(tmp_path / "tests.xml", (classname, name, "docker is not installed"))

    result = run(KNOWN_SKIPS, report)

    assert result.returncode == 1
    assert f"{COMPOSE_TEST} skipped (docker is not installed)" in result.stderr


def test_a_missing_or_empty_report_fails_rather_than_passing_on_nothing(tmp_path: Path) -> None:
    empty = _report(tmp_path / "empty.xml")

    result = run(KNOWN_SKIPS, empty, tmp_path / "missing.xml")

    assert result.returncode == 1
    assert f"{empty}: the report holds no test" in result.stderr
    assert f"{tmp_path / 'missing.xml'}: no test report" in result.stderr


def test_a_run_without_skips_passes(tmp_path: Path) -> None:
    report = _report(tmp_path / "tests.xml", ("tests.test_cli", "test_y", None))

    result = run(KNOWN_SKIPS, report)

    assert result.returncode == 0, result.stderr
    assert "known skips: none" in result.stdout
