"""The API's foundation: health and readiness, problem documents, request ids, access log."""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.engine import URL

from wxhub.api.app import create_app
from wxhub.api.errors import PROBLEM_JSON, RETRY_AFTER_S
from wxhub.config import load_settings
from wxhub.db.engine import make_engine


def app_for(engine: Engine) -> Flask:
    settings = load_settings({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    return create_app(settings, engine=engine)


def unreachable_app() -> Flask:
    settings = load_settings({"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_PASSWORD": "pw"})
    return create_app(settings)


def test_healthz_answers_without_touching_the_database():
    response = unreachable_app().test_client().get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_200_when_the_migrated_database_answers(engine: Engine):
    response = app_for(engine).test_client().get("/readyz")

    assert response.status_code == 200
    assert response.json == {"status": "ready"}


def test_readyz_is_503_with_retry_after_when_the_database_does_not_answer():
    started = time.perf_counter()
    response = unreachable_app().test_client().get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert response.headers["Retry-After"] == str(RETRY_AFTER_S)
    assert response.json["status"] == 503
    assert time.perf_counter() - started < 10


def test_readyz_is_503_when_the_database_has_no_schema(tmp_path: Path):
    empty = make_engine(URL.create("sqlite", database=str(tmp_path / "empty.db")))

    assert app_for(empty).test_client().get("/readyz").status_code == 503


def test_an_unknown_path_is_a_404_problem_document():
    response = unreachable_app().test_client().get("/no/such/path")

    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON
    assert set(response.json) >= {"type", "title", "status", "detail", "request_id"}


def test_a_wrong_method_is_a_405_problem_document_with_allow():
    response = unreachable_app().test_client().post("/healthz")

    assert response.status_code == 405
    assert response.mimetype == PROBLEM_JSON
    assert "GET" in response.headers["Allow"]


def test_an_unexpected_error_is_a_500_problem_document_without_a_trace(
    caplog: pytest.LogCaptureFixture,
):
    app = unreachable_app()

    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom", headers={"X-Request-ID": "req-42"})

    assert response.status_code == 500
    assert response.mimetype == PROBLEM_JSON
    assert "secret internals" not in response.get_data(as_text=True)
    assert response.json["request_id"] == "req-42"
    assert any("secret internals" in (r.exc_text or "") for r in caplog.records)


def test_the_request_id_is_echoed_or_generated():
    client = unreachable_app().test_client()

    echoed = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    generated = client.get("/healthz")
    unreasonable = client.get("/healthz", headers={"X-Request-ID": "x" * 500})

    assert echoed.headers["X-Request-ID"] == "abc-123"
    assert len(generated.headers["X-Request-ID"]) == 32
    assert unreasonable.headers["X-Request-ID"] != "x" * 500


def test_each_request_writes_one_access_log_record(caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO, logger="wxhub.api.access")

    unreachable_app().test_client().get("/healthz?x=1", headers={"X-Request-ID": "r1"})

    records = [r for r in caplog.records if r.name == "wxhub.api.access"]
    assert len(records) == 1
    record = records[0].__dict__
    assert (record["method"], record["path"], record["status"]) == ("GET", "/healthz", 200)
    assert record["request_id"] == "r1"
    assert record["duration_ms"] >= 0
    assert "remote_addr" in record


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _two_requests_share_one_connection(port: int) -> bool:
    """Keep-alive: a client's next request reuses its connection (no new TCP handshake)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        first_socket = conn.sock
        conn.request("GET", "/healthz")
        status = conn.getresponse().status
        return status == 200 and conn.sock is first_socket
    finally:
        conn.close()


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "wxhub.cli", "serve", "--host", "127.0.0.1", "--workers", "1", "--port"],
        ["-m", "wxhub.api"],
    ],
    ids=["wxhub serve", "python -m wxhub.api"],
)
def test_the_server_entry_points_answer_over_http(command: list[str], tmp_path: Path):
    port = _free_port()
    args = [*command, str(port)] if command[-1] == "--port" else command
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DB_"))},
        "PORT": str(port),
        "WEB_CONCURRENCY": "1",
        "WXHUB_LOG_FORMAT": "json",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wxhub.db'}",
    }
    server = subprocess.Popen(
        [sys.executable, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        body = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    body = json.loads(r.read())
                    server_header = r.headers.get("Server", "")
                break
            except OSError:
                time.sleep(0.1)
        assert body == {"status": "ok"}
        assert not any(ch.isdigit() for ch in server_header)  # no server version disclosed
        assert _two_requests_share_one_connection(port)
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    lines = [line for line in (out + err).decode().splitlines() if line.strip()]
    assert lines
    for line in lines:
        assert isinstance(json.loads(line), dict), line  # gunicorn's own lines are JSON too


def test_a_database_without_the_schema_is_a_503_that_says_to_run_the_job(db_url: URL):
    settings = load_settings({"DATABASE_URL": db_url.render_as_string(hide_password=False)})
    client = create_app(settings).test_client()

    response = client.get("/api/weather")

    assert response.status_code == 503
    assert response.mimetype == PROBLEM_JSON
    assert "wxhub run" in response.json["detail"]
