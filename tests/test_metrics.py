"""CloudWatch metrics in Embedded Metric Format: on the job's summary line, on the API's
access-log lines, and on every database connection failure; validated against the EMF
specification's shape, and absent unless WXHUB_METRICS=emf."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from tests.conftest import noaa_line, write_station
from wxhub.api.app import create_app
from wxhub.config import ConfigError, load_settings
from wxhub.db.engine import is_connection_failure, make_engine
from wxhub.observability import JsonFormatter, Metric, _Redactor, with_metrics

NAMESPACE = "wxhub/test"
EMF_ON = {"WXHUB_METRICS": "emf", "WXHUB_METRICS_NAMESPACE": NAMESPACE}
# The units CloudWatch accepts (PutMetricData's StandardUnit).
CLOUDWATCH_UNITS = {
    *("Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes"),
    *("Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits"),
    *("Percent", "Count", "Bytes/Second", "Kilobytes/Second", "Megabytes/Second"),
    *("Gigabytes/Second", "Terabytes/Second", "Bits/Second", "Kilobits/Second"),
    *("Megabits/Second", "Gigabits/Second", "Terabits/Second", "Count/Second", "None"),
}
LINES = [noaa_line("20000101", 10, -20, 0), noaa_line("20000102", 20, -10, 5)]


def assert_valid_emf(line: dict[str, Any]) -> dict[str, tuple[float, str]]:
    """Check one log line against the EMF specification; returns metric -> (value, unit)."""
    metadata = line["_aws"]
    assert isinstance(metadata["Timestamp"], int)
    assert abs(metadata["Timestamp"] - time.time() * 1000) < 10 * 60 * 1000  # ms, not s
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list)
    assert len(directives) == 1
    metrics: dict[str, tuple[float, str]] = {}
    for directive in directives:
        assert isinstance(directive["Namespace"], str)
        assert 1 <= len(directive["Namespace"]) <= 255
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for dimension in dimension_set:
                assert isinstance(line[dimension], str)  # a dimension's value is a string
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            assert set(metric) <= {"Name", "Unit", "StorageResolution"}
            assert isinstance(metric["Name"], str)
            assert 1 <= len(metric["Name"]) <= 255
            assert metric["Unit"] in CLOUDWATCH_UNITS
            value = line[metric["Name"]]  # the value is a member of the root
            assert isinstance(value, (int, float))
            assert not isinstance(value, bool)
            metrics[metric["Name"]] = (value, metric["Unit"])
    return metrics


def json_lines(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def emf_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if "_aws" in line]


def formatted(records: list[logging.LogRecord], namespace: str | None) -> list[dict[str, Any]]:
    """Captured records as the configured JSON handler writes them."""
    formatter = JsonFormatter(_Redactor(()), metrics_namespace=namespace)
    return [json.loads(formatter.format(record)) for record in records]


# --- settings ------------------------------------------------------------------------------------


def test_metrics_are_off_with_namespace_wxhub_by_default() -> None:
    settings = load_settings({})

    assert (settings.metrics, settings.metrics_namespace) == ("off", "wxhub")


def test_wxhub_metrics_emf_and_a_namespace_are_read() -> None:
    settings = load_settings({"WXHUB_METRICS": " EMF ", "WXHUB_METRICS_NAMESPACE": "wxhub/prod"})

    assert (settings.metrics, settings.metrics_namespace) == ("emf", "wxhub/prod")


@pytest.mark.parametrize("value", ["statsd", "on", "prometheus"])
def test_an_unknown_metrics_format_is_a_config_error_naming_it(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^WXHUB_METRICS="):
        load_settings({"WXHUB_METRICS": value})


# --- the formatter ------------------------------------------------------------------------------


def make_metric_record() -> logging.LogRecord:
    record = logging.LogRecord("wxhub.test", logging.INFO, __file__, 1, "done", None, None)
    fields = {"event": "summary", **with_metrics("job", Metric("RowsIngested", 12, "Count"))}
    record.__dict__.update(fields)
    return record


def test_an_emf_line_names_namespace_dimension_and_units_with_the_values_at_the_top() -> None:
    (line,) = formatted([make_metric_record()], NAMESPACE)

    assert assert_valid_emf(line) == {"RowsIngested": (12, "Count")}
    assert line["_aws"]["CloudWatchMetrics"] == [
        {
            "Namespace": NAMESPACE,
            "Dimensions": [["Service"]],
            "Metrics": [{"Name": "RowsIngested", "Unit": "Count"}],
        }
    ]
    assert line["Service"] == "job"
    assert (line["event"], line["message"]) == ("summary", "done")


def test_with_metrics_off_the_line_has_no_aws_block_and_no_metric_keys() -> None:
    (line,) = formatted([make_metric_record()], None)

    assert set(line) == {"time", "level", "logger", "message", "event"}


# --- the job ------------------------------------------------------------------------------------


def test_the_job_summary_carries_rows_ingested_rejected_files_failed_and_duration(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
) -> None:
    write_station(tmp_path / "in", "USC00000001", [*LINES, "20000103\tbad\t1\t1"])
    (tmp_path / "in" / "USC00000002.txt.gz").write_bytes(b"not gzip")

    result = wxhub_in_process(
        "run", str(tmp_path / "in"), env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **EMF_ON}
    )

    assert result.exit_code == 1
    lines = json_lines(result.stdout)
    (summary,) = emf_lines(lines)
    assert summary["event"] == "summary"
    metrics = assert_valid_emf(summary)
    assert {name: unit for name, (_value, unit) in metrics.items()} == {
        "RowsIngested": "Count",
        "RowsRejected": "Count",
        "FilesFailed": "Count",
        "RunDurationSeconds": "Seconds",
    }
    assert (summary["RowsIngested"], summary["RowsRejected"], summary["FilesFailed"]) == (2, 1, 1)
    assert summary["RunDurationSeconds"] == summary["duration_s"]
    assert summary["Service"] == "job"
    assert summary["_aws"]["CloudWatchMetrics"][0]["Namespace"] == NAMESPACE


def test_aggregate_alone_reports_its_duration_and_one_run_succeeded(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
) -> None:
    result = wxhub_in_process(
        "aggregate", env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **EMF_ON}
    )

    assert result.exit_code == 0, result.output
    (summary,) = emf_lines(json_lines(result.stdout))
    assert assert_valid_emf(summary) == {
        "RunDurationSeconds": (summary["duration_s"], "Seconds"),
        "RunsSucceeded": (1, "Count"),
    }


def test_a_run_that_succeeds_counts_one_run_succeeded(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
) -> None:
    write_station(tmp_path / "in", "USC00000001", LINES)

    result = wxhub_in_process(
        "run", str(tmp_path / "in"), env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **EMF_ON}
    )

    assert result.exit_code == 0, result.output
    (summary,) = emf_lines(json_lines(result.stdout))
    assert assert_valid_emf(summary)["RunsSucceeded"] == (1, "Count")
    assert summary["status"] == "succeeded"


def test_a_failed_run_and_an_ingest_alone_count_no_run_succeeded(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
) -> None:
    # The silent-night alarm must not be fed by a run that failed, nor by an ingest whose data
    # is not aggregated (served) yet.
    write_station(tmp_path / "in", "USC00000001", LINES)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "USC00000002.txt.gz").write_bytes(b"not gzip")
    env = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", **EMF_ON}

    failed = wxhub_in_process("run", str(tmp_path / "bad"), env=env)
    ingested = wxhub_in_process("ingest", str(tmp_path / "in"), env=env)

    assert (failed.exit_code, ingested.exit_code) == (1, 0), failed.output + ingested.output
    for result in (failed, ingested):
        (summary,) = emf_lines(json_lines(result.stdout))
        assert "RunsSucceeded" not in assert_valid_emf(summary)


def test_without_wxhub_metrics_no_job_line_carries_emf(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
) -> None:
    write_station(tmp_path / "in", "USC00000001", LINES)

    result = wxhub_in_process(
        "run", str(tmp_path / "in"), env={"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    )

    assert result.exit_code == 0
    lines = json_lines(result.stdout)
    assert lines
    assert emf_lines(lines) == []
    assert all("RowsIngested" not in line and "Service" not in line for line in lines)


def test_a_job_that_cannot_connect_counts_one_database_connection_failure(
    wxhub_in_process: Callable[..., Result], tmp_path: Path
) -> None:
    write_station(tmp_path / "in", "USC00000001", LINES)
    unreachable = {"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_PASSWORD": "pw"}

    result = wxhub_in_process("run", str(tmp_path / "in"), env={**unreachable, **EMF_ON})

    assert result.exit_code == 1
    (line,) = emf_lines(json_lines(result.stdout))
    assert assert_valid_emf(line) == {"DatabaseConnectionFailures": (1, "Count")}
    assert (line["level"], line["Service"]) == ("ERROR", "job")


# --- the API ------------------------------------------------------------------------------------


def test_each_api_access_line_carries_its_request_latency_in_milliseconds(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wxhub.api.access")
    settings = load_settings({"DB_HOST": "127.0.0.1", "DB_PORT": "1", **EMF_ON})
    client = create_app(settings).test_client()

    client.get("/healthz")
    client.get("/no/such/path")

    lines = formatted([r for r in caplog.records if r.name == "wxhub.api.access"], NAMESPACE)
    assert [line["status"] for line in lines] == [200, 404]
    for line in lines:
        metrics = assert_valid_emf(line)
        assert metrics == {"RequestLatency": (line["duration_ms"], "Milliseconds")}
        assert line["Service"] == "api"


def test_an_api_request_that_cannot_reach_the_database_counts_one_connection_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="wxhub")
    settings = load_settings({"DB_HOST": "127.0.0.1", "DB_PORT": "1", **EMF_ON})

    response = create_app(settings).test_client().get("/api/stations")

    assert response.status_code == 503
    lines = formatted(caplog.records, NAMESPACE)
    failures = [line for line in lines if "DatabaseConnectionFailures" in line]
    assert len(failures) == 1
    assert assert_valid_emf(failures[0]) == {"DatabaseConnectionFailures": (1, "Count")}
    assert failures[0]["Service"] == "api"


# --- what counts as a connection failure ------------------------------------------------------


def test_a_refused_connection_is_a_connection_failure() -> None:
    engine = make_engine(URL.create("mysql+pymysql", host="127.0.0.1", port=1, database="x"))

    with pytest.raises(OperationalError) as excinfo:
        engine.connect()

    assert is_connection_failure(excinfo.value)


def test_an_sqlite_file_that_cannot_be_opened_is_a_connection_failure(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/no/such/folder/x.db")

    with pytest.raises(OperationalError) as excinfo:
        engine.connect()

    assert is_connection_failure(excinfo.value)


def test_a_refused_statement_is_not_a_connection_failure(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path}/x.db")

    with pytest.raises(OperationalError) as excinfo, engine.connect() as conn:
        conn.execute(text("SELECT * FROM no_such_table"))

    assert not is_connection_failure(excinfo.value)
    assert not is_connection_failure(ValueError("not a database error"))
