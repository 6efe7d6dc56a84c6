"""Property-based conformance: schemathesis drives every operation of /api/openapi.json.

For every generated request: no 500, and every response conforms to the documented schema
(status code, content type, body, headers). Runs on the small fixture, on SQLite and MariaDB.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance
from sqlalchemy import Engine

from tests.conftest import noaa_line, write_station
from wxhub.api.app import create_app
from wxhub.api.errors import PROBLEM_JSON
from wxhub.config import load_settings
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import EXIT_OK, run_job

QUERY_TOO_LONG = 414
# Per operation and generation mode (valid-looking and deliberately invalid requests).
EXAMPLES_PER_OPERATION = 200


@pytest.fixture
def api_schema(engine: Engine, tmp_path: Path) -> Any:
    folder = tmp_path / "in"
    write_station(folder, "USC00000001", [noaa_line("20000101", 10, -20, 0)])
    write_station(folder, "USC00000002", [noaa_line("20000101", -9999, 5, -9999)])
    assert run_job(engine, "run", sources=resolve_sources([str(folder)])) == EXIT_OK
    settings_ = load_settings({"DATABASE_URL": engine.url.render_as_string(hide_password=False)})
    app = create_app(settings_, engine=engine)
    return schemathesis.openapi.from_wsgi("/api/openapi.json", app)


# schemathesis's own pytest plugin does not run under pytest 9; its Python API does.
@pytest.mark.parametrize("mode", list(schemathesis.GenerationMode), ids=lambda m: m.value)
def test_every_operation_conforms_to_the_openapi_document(
    api_schema: Any, mode: schemathesis.GenerationMode
) -> None:
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert {op.path for op in operations} >= {
        "/api/weather",
        "/api/weather/stats",
        "/api/stations",
        "/api/stations/{station_id}",
    }
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: Any) -> None:
            # What the issue asks: no 5xx, and every response as documented. Some requests
            # valid for the schema are rightly refused, for rules OpenAPI cannot state: a
            # cursor must be one of our links (it carries a checksum), and date/start_date,
            # start <= end are checked across parameters. So that one check is left out.
            response = case.call()
            if response.status_code == QUERY_TOO_LONG:
                # An invalid request long enough to pass our query-string limit is refused
                # before validation, with a documented 414 (schemathesis expects 400-like).
                assert response.headers["content-type"][0].startswith(PROBLEM_JSON)
                return
            excluded = [positive_data_acceptance]
            if any(isinstance(value, dict) for value in (case.query or {}).values()):
                # A query string carries text: an object generated as "not a string" reaches
                # the API as its text (q={'': 'null'} arrives as "{'': 'null'}"), which a
                # free-text parameter (the station list's q) rightly accepts.
                excluded.append(negative_data_rejection)
            case.validate_response(response, excluded_checks=excluded)

        conforms()
