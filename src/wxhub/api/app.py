"""The application factory: ``create_app()`` builds a configured API, as Flask's tutorial does.

Configuration is passed in (a :class:`~wxhub.config.Settings` and, for tests, an engine)
rather than read from globals, so tests build the app exactly as it runs.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, render_template_string, request
from flask_openapi3.models.info import Info
from flask_openapi3.openapi import OpenAPI
from flask_openapi3_swagger.templates import swagger_html_string
from pydantic import ValidationError
from sqlalchemy import Engine

from wxhub import __version__
from wxhub.api import db, security
from wxhub.api.caching import ResponseCache
from wxhub.api.errors import PROBLEM_JSON, problem, register_error_handlers
from wxhub.api.routes import explorer, health, stations, stats, weather
from wxhub.api.schemas import Problem
from wxhub.config import Settings, load_settings
from wxhub.db.engine import make_engine
from wxhub.observability import Metric, with_metrics

access_log = logging.getLogger("wxhub.api.access")

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_ENVIRON = "HTTP_X_REQUEST_ID"  # the same header as the WSGI server passes it
MAX_REQUEST_ID_LENGTH = 128
# The API answers or says it cannot within this: a dead database must not hang a request.
API_DB_CONNECT_TIMEOUT_S = 3
# ... and a database that stops answering mid-query (a network black hole, a hung server)
# must not hold a worker thread either; every API query takes milliseconds.
API_DB_READ_TIMEOUT_S = 5


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> Flask:
    """A configured API application."""
    settings = settings or load_settings()
    app = _OpenAPI(
        __name__,
        info=Info(title="wxhub", version=__version__, description=API_DESCRIPTION),
        doc_prefix="/api",
        doc_url="/openapi.json",
        doc_ui=settings.api_docs,
        security_schemes={},  # none; an explicit empty map keeps the document valid
        validation_error_status=400,
        validation_error_model=Problem,
        validation_error_callback=_invalid_parameter,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]  # keep documented field order
    app.extensions["wxhub.settings"] = settings
    app.extensions["wxhub.engine"] = engine or _api_engine(settings)
    app.extensions["wxhub.response_cache"] = ResponseCache(settings.api_cache_mb * 2**20)
    register_error_handlers(app)
    db.register(app)
    _register_request_id_and_access_log(app)
    security.register(app, settings)
    app.register_blueprint(health.bp)
    app.register_blueprint(explorer.bp)
    for blueprint in (weather.bp, stats.bp, stations.bp):
        app.register_api(blueprint)
    if settings.api_docs:
        app.add_url_rule("/api/docs", "docs", _swagger_ui_view(app))
    return app


CSV_PATHS = ("/api/weather", "/api/weather/stats")
PROBLEM_REF = "#/components/schemas/Problem"


class _OpenAPI(OpenAPI):
    """The generated document, completed with what the generator cannot infer: problem
    documents are ``application/problem+json``, the lists also answer ``text/csv``, and the
    data endpoints answer 304 to a matching ``If-None-Match``."""

    def generate_spec_json(self) -> None:
        super().generate_spec_json()  # type: ignore[no-untyped-call]
        for path, item in self.spec_json["paths"].items():
            for operation in item.values():
                responses = operation.setdefault("responses", {})
                for status, response in responses.items():
                    content = response.get("content", {})
                    if int(status) >= 400 and "application/json" in content:
                        schema = {"$ref": PROBLEM_REF}
                        response["content"] = {PROBLEM_JSON: {"schema": schema}}
                if path.startswith("/api/") and "200" in responses:
                    responses["304"] = {"description": "Not modified: the ETag still matches."}
                    responses["414"] = {
                        "description": "The query string is longer than the API accepts.",
                        "content": {PROBLEM_JSON: {"schema": {"$ref": PROBLEM_REF}}},
                    }
                if path in CSV_PATHS and "200" in responses:
                    responses["200"]["content"]["text/csv"] = {
                        "schema": {"type": "string", "description": "A header row, then rows."}
                    }


API_DESCRIPTION = (
    "Daily weather observations of NOAA stations and their yearly statistics. Every list is "
    "paged the same way (`page`, `page_size`, and `next`/`prev` links, also in a `Link` "
    "header); every error is an RFC 9457 `application/problem+json` document."
)


def _swagger_ui_view(app: Flask) -> Callable[[], Response]:
    """Swagger UI from the assets the app serves itself (no CDN: works offline), under a
    Content-Security-Policy that admits its own inline script by hash and nothing else."""
    with app.app_context():
        html = render_template_string(
            swagger_html_string, doc_url="/api/openapi.json", swagger_config={}, oauth_config={}
        )
    csp = security.page_csp(html)

    def swagger_ui() -> Response:
        response = Response(html, mimetype="text/html")
        response.headers["Content-Security-Policy"] = csp
        return response

    return swagger_ui


def _invalid_parameter(error: ValidationError) -> Response:
    first = error.errors()[0]
    location = [str(part) for part in first.get("loc", ()) if part != "__root__"]
    message = first.get("msg", "invalid value").removeprefix("Value error, ")
    # A check across parameters has no location; its message starts with the one at fault.
    parameter = location[-1] if location else message.split(" ", 1)[0]
    detail = f"{parameter}: {message}" if parameter else message
    return problem(400, "Invalid request", detail, parameter=parameter)


def _api_engine(settings: Settings) -> Engine:
    """The engine of every request: on the read URL when one is set (a replica; the API never
    writes), else on the database the job writes to. /readyz checks this same engine."""
    url, tls = settings.api_database_url, settings.api_db_tls
    if url.get_backend_name() == "sqlite":
        return make_engine(url, tls=tls)
    connect_args: dict[str, Any] = {
        "connect_timeout": API_DB_CONNECT_TIMEOUT_S,
        "read_timeout": API_DB_READ_TIMEOUT_S,
        "write_timeout": API_DB_READ_TIMEOUT_S,
    }
    # Reads only, each its own snapshot: no transaction is left open on a connection a
    # thread keeps between requests (api/db.py), and none needs a ROLLBACK round trip.
    return make_engine(
        url,
        tls=tls,
        connect_args=connect_args,
        isolation_level="AUTOCOMMIT",
    )


def _register_request_id_and_access_log(app: Flask) -> None:
    # Every request passes here twice: each read of ``request`` or ``g`` through Flask's
    # proxies costs a context lookup, and a header looked up in ``request.headers`` that is
    # absent raises (and catches) an exception inside werkzeug, so the hooks read the WSGI
    # environ and the objects behind the proxies once.
    @app.before_request
    def _start() -> None:
        incoming = request.environ.get(REQUEST_ID_ENVIRON, "")
        # Keep a caller's id for tracing, unless it is unreasonable to log.
        valid = 0 < len(incoming) <= MAX_REQUEST_ID_LENGTH and incoming.isprintable()
        context = g._get_current_object()
        context.request_id = incoming if valid else uuid.uuid4().hex
        context.started = time.perf_counter()

    @app.after_request
    def _finish(response: Response) -> Response:
        context = g._get_current_object()
        current = request._get_current_object()  # type: ignore[attr-defined]
        request_id = getattr(context, "request_id", None) or uuid.uuid4().hex
        response.headers[REQUEST_ID_HEADER] = request_id
        started = getattr(context, "started", None)
        duration_ms = None if started is None else round((time.perf_counter() - started) * 1000, 2)
        latency = (
            with_metrics("api", Metric("RequestLatency", duration_ms, "Milliseconds"))
            if duration_ms is not None
            else {}
        )
        method, path, status = current.method, current.path, response.status_code
        access_log.info(
            "%s %s %s",
            method,
            path,
            status,
            extra={
                "event": "access",
                "method": method,
                "path": path,
                "query": current.query_string.decode("latin-1")[:1000],
                "status": status,
                "duration_ms": duration_ms,
                "request_id": request_id,
                "remote_addr": current.remote_addr,
                **latency,
            },
        )
        return response
