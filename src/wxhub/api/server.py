"""Run the API under gunicorn: ``wxhub serve`` and ``python -m wxhub.api`` both come here.

Each gunicorn worker builds its own app (and so its own database connection pool) after the
fork; nothing that holds a connection is ever shared between processes.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path
from typing import Any

from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from wxhub.api.app import create_app
from wxhub.config import Settings
from wxhub.observability import configure_logging

# A fixed system path (gunicorn's heartbeat files), not a temporary file of ours.
SHARED_MEMORY = "/dev/shm"  # noqa: S108  # nosec B108
DEFAULT_PORT = 8000
DEFAULT_THREADS = 4
# A worker that stops answering gunicorn's heartbeat for this long is replaced.
WORKER_TIMEOUT_S = 30
# How long an idle client connection is kept open for its next request.
KEEPALIVE_S = 5


def default_workers() -> int:
    """Two threaded workers per core, at least two (one can restart while another serves).

    Threaded workers rather than gunicorn's sync ones: a sync worker closes the connection
    after every answer, and on a 2-core host the new connection per request halved the
    throughput (docs/benchmarks.md). A request is mostly Python (the GIL held), so threads
    add little beyond covering the database's waits; two processes per core with 4 threads
    each spread the client's kept-alive connections over more GILs than one process per
    core with 8, which measured as steady as it was fast: repeats within about 10% where
    2 x 8 swung by up to 36% (docs/benchmarks.md, "Traffic no cache helps").
    """
    return max(2, 2 * (os.cpu_count() or 1))


class _JsonLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's own lines (start, workers, signals) through wxhub's handler: JSON lines
    for CloudWatch like every other line, with secrets masked."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for logger in (self.error_log, self.access_log):
            logger.handlers.clear()
            logger.propagate = True


class _Server(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        if "control_socket_disable" in self.cfg.settings:
            # gunicorn 25.1+ opens a control socket under $HOME/.gunicorn: nothing here uses
            # it, and in the container (read-only root) it only logs an error.
            self.cfg.set("control_socket_disable", True)
        if Path(SHARED_MEMORY).is_dir():
            # The workers' heartbeat files: in memory, not on a container's (maybe read-only,
            # maybe slow) disk, as gunicorn's documentation advises.
            self.cfg.set("worker_tmp_dir", SHARED_MEMORY)

    def load(self) -> Flask:
        configure_logging(self.settings)
        app = create_app(self.settings)
        # The app's own objects (routes, models, compiled statements) live as long as the
        # worker: frozen, the collector's full passes, which a request's hundreds of new
        # objects trigger, no longer walk them. -0.03 to -0.05 ms a request (benchmarks.md).
        gc.collect()
        gc.freeze()
        return app


def serve(
    settings: Settings, *, host: str, port: int, workers: int, threads: int = DEFAULT_THREADS
) -> None:
    """Serve the API until interrupted."""
    configure_logging(settings)
    _Server(
        settings,
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "worker_class": "gthread",
            "threads": threads,
            "keepalive": KEEPALIVE_S,
            # gunicorn's maximum: the app answers a query string above its own limit with a
            # problem document (api/security.py) rather than gunicorn's bare 400.
            "limit_request_line": 8190,
            "timeout": WORKER_TIMEOUT_S,
            "graceful_timeout": WORKER_TIMEOUT_S,
            "accesslog": None,  # the app writes its own JSON access log
            "logger_class": _JsonLogger,
            "proc_name": "wxhub-api",
        },
    ).run()
