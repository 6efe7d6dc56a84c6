"""Every error is an RFC 9457 problem document (``application/problem+json``), never HTML.

A client gets ``type``, ``title``, ``status``, ``detail`` and, where one parameter is at
fault, ``parameter``; an unexpected error gets a request id to quote, and its trace goes to
the log, not to the client.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, json
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from wxhub.db.engine import is_connection_failure
from wxhub.db.tls import DatabaseTlsError
from wxhub.observability import Metric, with_metrics

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
RETRY_AFTER_S = 5


class ProblemError(Exception):
    """Raise to answer with a problem document (400 for a bad parameter, by default)."""

    def __init__(
        self,
        detail: str,
        *,
        status: int = 400,
        title: str = "Invalid request",
        parameter: str | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status
        self.title = title
        self.parameter = parameter


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    parameter: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A problem+json response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if parameter is not None:
        body["parameter"] = parameter
    request_id = g.get("request_id")
    if request_id:
        body["request_id"] = request_id
    response = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def database_unavailable() -> Response:
    return problem(
        503,
        "Service unavailable",
        "The database does not answer; try again shortly.",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


# "no such table" (SQLite), 1146 "Table ... doesn't exist" (MySQL/MariaDB).
_MISSING_TABLE_MARKERS = ("no such table", "1146")


def _schema_missing(exc: DBAPIError) -> bool:
    text = str(exc.orig)
    return any(marker in text for marker in _MISSING_TABLE_MARKERS)


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that turn every error into a problem document."""

    @app.errorhandler(ProblemError)
    def _api_problem(exc: ProblemError) -> Response:
        return problem(exc.status, exc.title, exc.detail, parameter=exc.parameter)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = problem(status, exc.name, exc.description or exc.name)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(DatabaseTlsError)
    def _database_tls_error(exc: DatabaseTlsError) -> Response:
        # A setting to fix (the CA bundle, WXHUB_DB_TLS): said in one line, answered as an
        # unavailable database so the load balancer keeps the task out of service.
        log.error("error: %s", exc, extra={"event": "db_tls_error"})
        return database_unavailable()

    @app.errorhandler(DBAPIError)
    def _database_error(exc: DBAPIError) -> Response:
        if _schema_missing(exc):
            log.error("database has no wxhub schema: %s", exc.orig, extra={"event": "no_schema"})
            return problem(
                503,
                "Service unavailable",
                "The database has no wxhub tables yet: run `wxhub run SOURCE...` (or "
                "`wxhub migrate`) against it first.",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        if isinstance(exc, OperationalError) or exc.connection_invalidated:
            fields: dict[str, Any] = {"event": "db_unavailable"}
            if is_connection_failure(exc):
                fields.update(with_metrics("api", Metric("DatabaseConnectionFailures", 1, "Count")))
            log.warning("database unavailable: %s", exc.orig, extra=fields)
            return database_unavailable()
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unexpected error", extra={"event": "error"})
        return problem(
            500,
            "Internal server error",
            "An unexpected error occurred; quote the request_id when reporting it.",
        )
