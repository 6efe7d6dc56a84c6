"""Logging set-up: JSON lines for CloudWatch, readable lines and a progress bar on a terminal.

Log records carry their structured fields in ``extra`` (``event``, counts, ...). The JSON
formatter puts them at the top level of each line so CloudWatch Logs Insights can query them;
the text formatter shows the message. Every known secret is masked in both, whatever the
message or exception says.

Metrics ride on log lines too: with ``WXHUB_METRICS=emf`` a line logged with
``extra=with_metrics(...)`` also carries CloudWatch's Embedded Metric Format (an ``_aws``
block naming the metrics, their values at the top level, and the ``Service`` dimension), so
CloudWatch Logs turns it into metrics with no agent, no API call and no extra dependency.
Without it (the default, and on a terminal) the line is exactly what it was.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, quote_plus

import orjson

from wxhub.config import Settings

_STANDARD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
MASK = "***"
_ORJSON_AS_BEFORE = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS

MetricUnit = Literal["Count", "Seconds", "Milliseconds"]
Service = Literal["job", "api"]
# The record attribute the metrics travel in; the leading '_' keeps it out of the plain fields.
_METRICS_ATTR = "_wxhub_metrics"
EMF_DIMENSION = "Service"


@dataclass(frozen=True)
class Metric:
    """One CloudWatch metric value, named as the dashboards and alarms know it."""

    name: str
    value: float
    unit: MetricUnit


def with_metrics(service: Service, *metrics: Metric) -> dict[str, Any]:
    """``extra`` fields that make a log line carry ``metrics`` (when EMF is on)."""
    return {_METRICS_ATTR: (service, metrics)}


class _Redactor:
    def __init__(self, secrets: Sequence[str]) -> None:
        # Also each secret as it reads inside a JSON string (a '"' or '\\' is escaped there)
        # and inside a URL (a rendered database URL percent-encodes ':', '/', '@', '$', ...).
        forms = {
            form
            for s in secrets
            if s
            for form in (
                s,
                json.dumps(s)[1:-1],
                json.dumps(s, ensure_ascii=False)[1:-1],
                quote(s, safe=""),
                quote_plus(s, safe=""),
            )
        }
        self.secrets = tuple(sorted(forms, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the record's extras."""

    def __init__(self, redact: Callable[[str], str], metrics_namespace: str | None = None) -> None:
        super().__init__()
        self.redact = redact
        # None: metrics are dropped; else the CloudWatch namespace of the EMF blocks.
        self.metrics_namespace = metrics_namespace
        self._second: tuple[int, str] = (-1, "")

    def _utc_second(self, created: float) -> str:
        """The record's second in UTC, as its ``Z`` says (``formatTime`` is local time);
        formatted once per second, as every API request logs a line."""
        second = int(created)
        last, text = self._second
        if second != last:
            text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            self._second = (second, text)
        return text

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": f"{self._utc_second(record.created)}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        attached = getattr(record, _METRICS_ATTR, None)
        if attached is not None and self.metrics_namespace is not None:
            service, metrics = attached
            payload.update(self._emf(record, service, metrics))
        try:
            # orjson: the API writes one of these lines per request, and the standard
            # encoder took a fifth of an uncached request's own time (docs/benchmarks.md).
            # Dates and dataclasses go through ``str`` as before.
            text = orjson.dumps(payload, default=str, option=_ORJSON_AS_BEFORE).decode()
        except orjson.JSONEncodeError:  # what orjson refuses (an int beyond 64 bits)
            text = json.dumps(payload, default=str, ensure_ascii=False)
        return self.redact(text)

    def _emf(
        self, record: logging.LogRecord, service: str, metrics: Sequence[Metric]
    ) -> dict[str, Any]:
        """The EMF fields: the ``_aws`` directive, the dimension and the metric values."""
        directive = {
            "Namespace": self.metrics_namespace,
            "Dimensions": [[EMF_DIMENSION]],
            "Metrics": [{"Name": m.name, "Unit": m.unit} for m in metrics],
        }
        fields: dict[str, Any] = {
            "_aws": {"Timestamp": int(record.created * 1000), "CloudWatchMetrics": [directive]},
            EMF_DIMENSION: service,
        }
        fields.update((m.name, m.value) for m in metrics)
        return fields


class RedactingFormatter(logging.Formatter):
    """The plain formatter, with secrets masked."""

    def __init__(self, redact: Callable[[str], str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class _RedactFilter(logging.Filter):
    """Masks secrets in the message before a handler that formats on its own (rich)."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        return True


_HANDLER_NAME = "wxhub"
_state: dict[str, Any] = {"json": True, "console": None}


def uses_json(settings: Settings, stream: Any = None) -> bool:
    """JSON unless asked otherwise or writing to a terminal."""
    if settings.log_format != "auto":
        return settings.log_format == "json"
    stream = stream or sys.stderr
    return not (hasattr(stream, "isatty") and stream.isatty())


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Install the one handler every wxhub module logs through (idempotent)."""
    redact = _Redactor(settings.secrets_to_redact())
    root = logging.getLogger()
    for existing in list(root.handlers):
        if existing.get_name() == _HANDLER_NAME:
            root.removeHandler(existing)
    handler: logging.Handler
    if uses_json(settings):
        handler = logging.StreamHandler(sys.stdout)
        namespace = settings.metrics_namespace if settings.metrics == "emf" else None
        handler.setFormatter(JsonFormatter(redact, metrics_namespace=namespace))
        _state.update(json=True, console=None)
    else:
        # rich only on a terminal: the JSON path (every container run) never imports it.
        from rich.console import Console  # noqa: PLC0415
        from rich.logging import RichHandler  # noqa: PLC0415

        console = Console(stderr=True)
        handler = RichHandler(console=console, show_path=False, markup=False)
        handler.addFilter(_RedactFilter(redact))
        _state.update(json=False, console=console)
    handler.set_name(_HANDLER_NAME)
    root.addHandler(handler)
    root.setLevel(level)
    # Library chatter (Alembic's "Context impl SQLiteImpl", botocore's "Found credentials")
    # is not for operators.
    for noisy in ("alembic", "sqlalchemy", "botocore", "boto3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; nothing when logging JSON. Yields ``advance(n)``."""
    console = _state.get("console")
    if _state.get("json", True) or console is None or total == 0:
        yield lambda _n: None
        return
    from rich.progress import (  # noqa: PLC0415  (rich only on a terminal)
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
