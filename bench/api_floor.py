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
    python bench/api_floor.py --instructions first,stats   # needs valgrind

``--profile TYPE`` prints cProfile's 30 heaviest functions (cumulative) for that type.

``--instructions TYPES`` counts, instead of timing, the CPU instructions one request of each
type costs on each side, with valgrind's callgrind (the count of a run of 250 requests less
that of a run of 50, over 200): the same figure on a busy machine or a quiet one, so a change
to the hot path can be judged by a few percent where timings swing by more.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import pstats
import random
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_api
from bench_run import calibration_s

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
    parser.add_argument("--instructions", default=None, type=lambda v: v.split(","))
    parser.add_argument("--run", nargs=4, metavar=("DATABASE", "SIDE", "TYPE", "N"))
    options = parser.parse_args()
    if options.run:  # one side's requests, under callgrind (see --instructions)
        database, side, key, n = options.run
        run_requests(Path(database), side, key, int(n))
        return
    with tempfile.TemporaryDirectory(prefix="wxhub-floor-") as folder:
        database = Path(folder) / "wxhub.db"
        bench_api.load(f"sqlite:///{database}")
        if options.instructions:
            count_instructions(database, options.instructions)
        else:
            measure(database, options)


SIDES = ("wxhub", "floor", "bare")


def apps(database: Path) -> dict[str, WSGI]:
    """wxhub as deployed (answer cache off, a JSON access line per request, to a discarded
    stream), the framework's floor, the bare endpoint, and a plain Flask app."""
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
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "setStream"):
            handler.setStream(io.StringIO())
    plain = Flask("plain")
    plain.add_url_rule("/x", "x", lambda: {"a": 1})
    return {
        "wxhub": create_app(settings),
        "floor": floor_api.app,
        "bare": bare_api.app,
        "plain": plain,
    }


def paths_of(side: str, key: str, n: int) -> list[str]:
    """``n`` distinct paths of request type ``key`` as ``side`` is asked them."""
    if key == "healthz":
        return ["/x" if side == "plain" else "/healthz"] * n
    kind = next(k for k in bench_api.REQUEST_TYPES if k.key == key)
    rng = random.Random(f"floor-{kind.key}")  # noqa: S311  (reproducible)
    pairs = [kind.distinct(rng) for _ in range(n)]
    return [a if side == "wxhub" else b for a, b in pairs]


def run_requests(database: Path, side: str, key: str, n: int) -> None:
    app = apps(database)[side]
    for path in paths_of(side, key, n):
        call(app, path)


def count_instructions(database: Path, keys: list[str]) -> None:
    """Instructions per request of each type on each side, by callgrind (two at a time)."""

    def start(side: str, key: str, n: int) -> subprocess.Popen[str]:
        args = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
        args += [sys.executable, __file__, "--run", str(database), side, key, str(n)]
        return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def collected(process: subprocess.Popen[str]) -> int:
        _, err = process.communicate()
        found = re.search(r"Collected : (\d+)", err)
        if process.returncode or found is None:
            raise SystemExit(f"callgrind failed:\n{err[-2000:]}")
        return int(found.group(1))

    print("\nInstructions per request (callgrind, in-process, distinct requests, cache off)\n")
    print("| request | wxhub | floor | bare | wxhub / floor | floor / bare | wxhub / bare |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for key in keys:
        per: dict[str, float] = {}
        sides = ("wxhub", "plain") if key == "healthz" else SIDES
        for side in sides:
            short, long = start(side, key, 50), start(side, key, 250)
            per[side] = (collected(long) - collected(short)) / 200
        if key == "healthz":
            print(
                f'| `/healthz` (wxhub) and a plain Flask `{{"a": 1}}` | {per["wxhub"]:,.0f} '
                f"| {per['plain']:,.0f} | | {per['wxhub'] / per['plain']:.2f}x | | |"
            )
            continue
        name = next(k.name for k in bench_api.REQUEST_TYPES if k.key == key)
        print(
            f"| {name} | {per['wxhub']:,.0f} | {per['floor']:,.0f} | {per['bare']:,.0f} "
            f"| {per['wxhub'] / per['floor']:.2f}x | {per['floor'] / per['bare']:.2f}x "
            f"| {per['wxhub'] / per['bare']:.2f}x |"
        )


def measure(database: Path, options: argparse.Namespace) -> None:
    served = apps(database)
    app, plain = served["wxhub"], served["plain"]
    floor_app, bare_app = served["floor"], served["bare"]

    n = options.requests + 200
    print(
        f"\nIn-process, mean of {options.requests} distinct requests (best of 3 passes), "
        f"answer cache off, calibration {calibration_s():.2f} s\n"
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
        ours_paths = paths_of("wxhub", kind.key, n)
        bare_paths = paths_of("bare", kind.key, n)
        ours = mean_ms(app, ours_paths)
        floor = mean_ms(floor_app, bare_paths)
        bare = mean_ms(bare_app, bare_paths)
        print(
            f"| {kind.name} | {ours:.3f} | {floor:.3f} | {bare:.3f} | {ours - floor:.3f} "
            f"| {ours / floor:.2f}x | {floor / bare:.2f}x | {ours / bare:.2f}x |"
        )
        if options.profile == kind.key:
            profile = cProfile.Profile()
            profile.enable()
            for path in ours_paths[:1000]:
                call(app, path)
            profile.disable()
            pstats.Stats(profile).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
