"""Liveness and readiness, for the load balancer and the orchestrator.

``/healthz`` answers as long as the process does (it never touches the database, so a
database outage does not make the orchestrator kill healthy API tasks); ``/readyz`` answers
200 only when the database answers and carries the schema.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from wxhub.api.errors import database_unavailable
from wxhub.db.engine import is_connection_failure
from wxhub.observability import Metric, with_metrics

log = logging.getLogger(__name__)

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> Response:
    engine: Engine = current_app.extensions["wxhub.engine"]
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError as exc:
        if is_connection_failure(exc):
            log.warning(
                "readiness: the database does not answer: %s",
                exc.orig,
                extra={
                    "event": "db_unavailable",
                    **with_metrics("api", Metric("DatabaseConnectionFailures", 1, "Count")),
                },
            )
        return database_unavailable()
    except SQLAlchemyError:
        return database_unavailable()
    return jsonify(status="ready")
