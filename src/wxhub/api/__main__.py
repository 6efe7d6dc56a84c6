"""``python -m wxhub.api``: the container's API entry point, configured by the environment.

Binds 0.0.0.0 (the container's network is the boundary; the load balancer's security group
is the only way in), port ``PORT`` or 8000, ``WEB_CONCURRENCY`` workers (default: one per
core, at least two) of ``WXHUB_API_THREADS`` threads each (default 8).
"""

from __future__ import annotations

import os
import sys

from wxhub.api.server import DEFAULT_PORT, DEFAULT_THREADS, default_workers, serve
from wxhub.config import ConfigError, load_settings


def main() -> None:
    try:
        settings = load_settings()
        port = int(os.environ.get("PORT", DEFAULT_PORT))
        workers = int(os.environ.get("WEB_CONCURRENCY", default_workers()))
        threads = int(os.environ.get("WXHUB_API_THREADS", DEFAULT_THREADS))
    except (ConfigError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    host = "0.0.0.0"  # noqa: S104  (see the docstring)  # nosec B104
    serve(settings, host=host, port=port, workers=workers, threads=threads)


if __name__ == "__main__":
    main()
