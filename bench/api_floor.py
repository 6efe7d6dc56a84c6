"""Where an uncached API request's time goes, in-process (no server, no network): the floor.

For each request type of ``bench_api.py`` (distinct requests, answer cache off), the mean time
of a WSGI call into wxhub, into the framework's floor (``floor_api.py``: the bare work behind
Flask and flask-openapi3's validation of wxhub's parameter models) and into the bare endpoint
(``bare_api.py``) on the same SQLite file, beside two floors that hold whatever wxhub's own
code does:

* a plain Flask app answering ``{"a": 1}`` (Flask's own request and response handling);
* wxhub's ``/healthz`` (the same, plus wxhub's request hooks: request id, access log, security
  headers, query-string limits), no database.

    python bench/api_floor.py [--requests 3000] [--profile first]

``--profile TYPE`` prints cProfile's 30 heaviest functions (cumulative) for that type.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_api

WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def call(app: WSGI, path: str) -> bytes:
    route, _, query = path.partition("?")
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": route,
        "QUERY_STRING": query,
        "SERVER_NAME": "bench",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": sys.stderr,
    }
    status: list[str] = []
    body = b"".join(app(environ, lambda s, _h, _e=None: status.append(s)))
    if not status[0].startswith("200"):
        raise SystemExit(f"{path}: {status[0]} {body[:200]!r}")
    return body


def mean_ms(app: WSGI, paths: list[str]) -> float:
    for path in paths[:200]:
        call(app, path)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for path in paths[200:]:
            call(app, path)
        best = min(best, (time.perf_counter() - started) / (len(paths) - 200) * 1000)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", default=None)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wxhub-floor-") as folder:
        database = Path(folder) / "wxhub.db"
        bench_api.load(f"sqlite:///{database}")
        measure(database, options)


def measure(database: Path, options: argparse.Namespace) -> None:
    import os  # noqa: PLC0415

    os.environ["BARE_DATABASE_URL"] = f"sqlite:///{database}"
    from flask import Flask  # noqa: PLC0415

    import bare_api  # noqa: PLC0415  (reads BARE_DATABASE_URL when imported)
    import floor_api  # noqa: PLC0415
    from wxhub.api.app import create_app  # noqa: PLC0415
    from wxhub.config import load_settings  # noqa: PLC0415
    from wxhub.observability import configure_logging  # noqa: PLC0415

    settings = load_settings(
        {
            "DATABASE_URL": f"sqlite:///{database}",
            "WXHUB_API_CACHE_MB": "0",
            "WXHUB_LOG_FORMAT": "json",
        }
    )
    configure_logging(settings)
    # The access log is written as deployed (a JSON line per request), to a discarded stream.
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "setStream"):
            handler.setStream(io.StringIO())
    app = create_app(settings)
    plain = Flask("plain")
    plain.add_url_rule("/x", "x", lambda: {"a": 1})

    n = options.requests + 200
    print(
        f"\nIn-process, mean of {options.requests} distinct requests (best of 3 passes), "
        f"answer cache off, calibration {bench_api.calibration_s():.2f} s\n"
    )
    print(
        "| request | wxhub ms | floor ms | bare ms | wxhub - floor ms | wxhub / floor "
        "| floor / bare | wxhub / bare |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    plain_ms = mean_ms(plain, ["/x"] * n)
    health_ms = mean_ms(app, ["/healthz"] * n)
    print(f'| plain Flask, `{{"a": 1}}` (the framework alone) | {plain_ms:.3f} | | | | | | |')
    print(
        f"| wxhub `/healthz` (framework + wxhub's hooks, no database) | {health_ms:.3f} "
        "| | | | | | |"
    )
    for kind in bench_api.REQUEST_TYPES:
        rng = random.Random(f"floor-{kind.key}")  # noqa: S311  (reproducible)
        pairs = [kind.distinct(rng) for _ in range(n)]
        ours = mean_ms(app, [a for a, _ in pairs])
        floor = mean_ms(floor_api.app, [b for _, b in pairs])
        bare = mean_ms(bare_api.app, [b for _, b in pairs])
        print(
            f"| {kind.name} | {ours:.3f} | {floor:.3f} | {bare:.3f} | {ours - floor:.3f} "
            f"| {ours / floor:.2f}x | {floor / bare:.2f}x | {ours / bare:.2f}x |"
        )
        if options.profile == kind.key:
            profile = cProfile.Profile()
            profile.enable()
            for path, _ in pairs[:1000]:
                call(app, path)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
