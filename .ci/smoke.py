"""The end-to-end checks of .ci/run: the job's summary line, and the API that `make run` serves.

    python .ci/smoke.py summary KEY=VALUE...
        Reads the job's JSON log on stdin, prints its summary line, and fails unless that line
        has every KEY at VALUE (compared as JSON: files_loaded=167, status=succeeded).

    python .ci/smoke.py port-free PORT
        Fails, naming the process where it can, when anything listens on PORT: a stale server
        there would answer the checks in place of the one `make run` is about to start.

    python .ci/smoke.py served-by PORT PID
        Fails unless every socket listening on PORT belongs to PID or to one of its descendants
        (make -> wxhub serve -> the gunicorn workers), so the answers checked next come from
        this run's server and nobody else's. Reads /proc (Linux, like .ci/run).

    python .ci/smoke.py api PORT
        Requests each page of SMOKE_CHECKS from 127.0.0.1:PORT and checks its status, its media
        type and what its body says against known facts of the vendored data/wx_data. Prints
        one line per page, as curl's "%{http_code} %{time_total}s PATH" did.

Exit status 0 when all is well, 1 with one line per problem on stderr otherwise.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TCP_LISTEN = "0A"  # the state column of /proc/net/tcp
PROC = Path("/proc")
REQUEST_TIMEOUT_S = 30

# ---- the job's summary line --------------------------------------------------------------


def summary_problems(log_lines: Iterable[str], expected: dict[str, Any]) -> tuple[str, list[str]]:
    """(the last summary line, what in it differs from ``expected``). Lines that are not JSON
    (make echoing its command) are passed over."""
    summary_line, summary = "", None
    for line in log_lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and record.get("event") == "summary":
            summary_line, summary = line.strip(), record
    if summary is None:
        return "", ["no summary line in the job's log (is WXHUB_LOG_FORMAT=json set?)"]
    problems = [
        f"summary: {key} is {summary.get(key)!r}, expected {value!r}"
        for key, value in expected.items()
        if summary.get(key) != value
    ]
    return summary_line, problems


def parse_expected(pairs: Iterable[str]) -> dict[str, Any]:
    """KEY=VALUE words as a dict, each value read as JSON when it is JSON (167), else text."""
    expected: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise SystemExit(f"smoke: expected KEY=VALUE, got {pair!r}")
        try:
            expected[key] = json.loads(text)
        except ValueError:
            expected[key] = text
    return expected


# ---- who listens on the port -------------------------------------------------------------


def listening_sockets(port: int) -> set[int]:
    """The inodes of the TCP sockets (IPv4 and IPv6, any address) listening on ``port``."""
    inodes: set[int] = set()
    for table in (PROC / "net" / "tcp", PROC / "net" / "tcp6"):
        if not table.exists():
            continue
        for line in table.read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if fields[3] == TCP_LISTEN and local_port == port:
                inodes.add(int(fields[9]))
    return inodes


def sockets_of(pid: int) -> set[int]:
    """The inodes of the sockets ``pid`` holds open (none when it is gone or not ours to see)."""
    inodes: set[int] = set()
    try:
        for fd in (PROC / str(pid) / "fd").iterdir():
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target.removeprefix("socket:[").removesuffix("]")))
    except OSError:
        pass
    return inodes


def _pids() -> list[int]:
    return [int(entry.name) for entry in PROC.iterdir() if entry.name.isdigit()]


def process_tree(root: int) -> set[int]:
    """``root`` and every process descended from it."""
    children: dict[int, set[int]] = defaultdict(set)
    for pid in _pids():
        try:
            stat = (PROC / str(pid) / "stat").read_text()
        except OSError:
            continue
        # "pid (command) state ppid ...": the command may hold spaces and parentheses.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children[parent].add(pid)
    tree: set[int] = set()
    waiting = [root]
    while waiting:
        pid = waiting.pop()
        if pid not in tree:
            tree.add(pid)
            waiting.extend(children[pid])
    return tree


def describe_holders(inodes: set[int]) -> str:
    """'pid 123 (python3 -m http.server 8000)' for each process holding one of ``inodes``."""
    found = []
    for pid in _pids():
        if sockets_of(pid) & inodes:
            try:
                raw = (PROC / str(pid) / "cmdline").read_bytes()
                command = raw.replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:
                command = "?"
            found.append(f"pid {pid} ({command})")
    return ", ".join(found) or "a process this user cannot see"


def port_free_problems(port: int) -> list[str]:
    listening = listening_sockets(port)
    if not listening:
        return []
    return [
        f"port {port} is already in use by {describe_holders(listening)}: a server started "
        f"before this run would answer its checks. Stop it, or set WXHUB_CI_PORT to a free port."
    ]


def served_by_problems(port: int, root: int) -> list[str]:
    listening = listening_sockets(port)
    if not listening:
        return [f"nothing listens on port {port}"]
    ours: set[int] = set()
    for pid in process_tree(root):
        ours |= sockets_of(pid)
    foreign = listening - ours
    if not foreign:
        return []
    return [
        f"port {port} is answered by {describe_holders(foreign)}, which is not the server "
        f"`make run` started (pid {root} and its children)"
    ]


# ---- the API -----------------------------------------------------------------------------

Facts = dict[str, Any]


@dataclass(frozen=True)
class SmokeCheck:
    """One page: its media type, and what its body says (``read``) against what it must say."""

    path: str
    media_type: str
    read: Callable[[bytes], Facts]
    expected: Facts


def _json(read: Callable[[Any], Facts]) -> Callable[[bytes], Facts]:
    return lambda body: read(json.loads(body))


def _contains(*needles: str) -> tuple[Callable[[bytes], Facts], Facts]:
    """A reader that notes whether the body contains each needle, and the answer: all do."""

    def read(body: bytes) -> Facts:
        return {f"contains {needle!r}": needle.encode() in body for needle in needles}

    return read, {f"contains {needle!r}": True for needle in needles}


def _page(doc: Any) -> Facts:
    """What every observation page is checked on: its place, its size, its first row, and
    which stations and years its rows are of."""
    rows = doc["data"]
    return {
        "page": doc["pagination"]["page"],
        "total": doc["pagination"]["total"],
        "rows": len(rows),
        "first row": (rows[0]["station_id"], rows[0]["date"]),
        "stations": sorted({row["station_id"] for row in rows}),
        "years": sorted({row["date"][:4] for row in rows}),
    }


# Known facts of the vendored data: USC00110072 in 1985.
USC00110072_1985 = {
    "station_id": "USC00110072",
    "year": 1985,
    "avg_max_temp_c": 15.33,
    "avg_min_temp_c": 4.33,
    "total_precipitation_cm": 78.01,
}
STATIONS = 167
OBSERVATIONS = 1_729_957


def _stats(doc: Any) -> Facts:
    """The first row's statistics field by field (so a wrong one is named), and the span."""
    rows = doc["data"]
    return {
        "total": doc["pagination"]["total"],
        **{f"first row's {field}": rows[0][field] for field in USC00110072_1985},
        "stations": sorted({row["station_id"] for row in rows}),
        "years": [rows[0]["year"], rows[-1]["year"]],
    }


def _stats_expected(total: int, years: list[int]) -> Facts:
    return {
        "total": total,
        **{f"first row's {field}": value for field, value in USC00110072_1985.items()},
        "stations": ["USC00110072"],
        "years": years,
    }


def _stations(doc: Any) -> Facts:
    return {
        "total": doc["pagination"]["total"],
        "rows": len(doc["data"]),
        "first station": doc["data"][0]["station_id"],
        "has a next page": doc["pagination"]["next"] is not None,
    }


def _openapi(doc: Any) -> Facts:
    return {
        "openapi major version": str(doc["openapi"]).split(".")[0],
        "title": doc["info"]["title"],
        "paths": sorted(doc["paths"]),
    }


_docs_read, _docs_expected = _contains(
    "<title>Swagger UI</title>", '<div id="swagger-ui">', "swagger-ui-bundle.js"
)
_explorer_read, _explorer_expected = _contains(
    "<title>wxhub station explorer</title>", "/explorer/explorer.js", "/explorer/vendor/uPlot"
)
_uplot_read, _uplot_expected = _contains("/*! https://github.com/leeoniya/uPlot", "var uPlot=")

SMOKE_CHECKS = [
    SmokeCheck(
        "/api/weather?station_id=USC00110072&start_date=1985-01-01&end_date=1985-12-31",
        "application/json",
        _json(_page),
        {
            "page": 1,
            "total": 365,
            "rows": 100,
            "first row": ("USC00110072", "1985-01-01"),
            "stations": ["USC00110072"],
            "years": ["1985"],
        },
    ),
    SmokeCheck(
        # A page jump deep into the whole table: found from the per-station-year day counts.
        "/api/weather?page=17000",
        "application/json",
        _json(_page),
        {
            "page": 17000,
            "total": OBSERVATIONS,
            "rows": 100,
            "first row": ("USC00338822", "1992-09-15"),
            "stations": ["USC00338822"],
            "years": ["1992"],
        },
    ),
    SmokeCheck(
        "/api/weather/stats?station_id=USC00110072&year=1985",
        "application/json",
        _json(_stats),
        _stats_expected(total=1, years=[1985, 1985]),
    ),
    SmokeCheck(
        "/api/weather/stats?station_id=USC00110072",
        "application/json",
        _json(_stats),
        _stats_expected(total=30, years=[1985, 2014]),
    ),
    SmokeCheck(
        "/api/stations",
        "application/json",
        _json(_stations),
        {"total": STATIONS, "rows": 100, "first station": "USC00110072", "has a next page": True},
    ),
    SmokeCheck(
        "/api/stations?page_size=1000",
        "application/json",
        _json(_stations),
        {
            "total": STATIONS,
            "rows": STATIONS,
            "first station": "USC00110072",
            "has a next page": False,
        },
    ),
    SmokeCheck("/api/docs", "text/html", _docs_read, _docs_expected),
    SmokeCheck(
        "/api/openapi.json",
        "application/json",
        _json(_openapi),
        {
            "openapi major version": "3",
            "title": "wxhub",
            "paths": [
                "/api/stations",
                "/api/stations/{station_id}",
                "/api/weather",
                "/api/weather/stats",
            ],
        },
    ),
    SmokeCheck("/", "text/html", _explorer_read, _explorer_expected),
    SmokeCheck(
        "/explorer/vendor/uPlot.iife.min.js", "text/javascript", _uplot_read, _uplot_expected
    ),
]


@dataclass(frozen=True)
class Answer:
    status: int
    media_type: str
    body: bytes
    seconds: float


def fetch(port: int, path: str) -> Answer:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    started = time.perf_counter()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    media_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()
    return Answer(response.status, media_type, body, time.perf_counter() - started)


def check_answer(check: SmokeCheck, answer: Answer) -> list[str]:
    """What is wrong with ``answer`` to ``check``, one line each (nothing when it is right)."""
    where = f"GET {check.path}"
    if answer.status != 200:
        return [f"{where}: status {answer.status}, expected 200: {answer.body[:200]!r}"]
    if answer.media_type != check.media_type:
        return [f"{where}: Content-Type {answer.media_type!r}, expected {check.media_type!r}"]
    try:
        facts = check.read(answer.body)
    except (ValueError, LookupError, TypeError, AttributeError) as exc:
        return [f"{where}: not the expected shape ({exc!r}): {answer.body[:200]!r}"]
    return [
        f"{where}: {name} is {facts.get(name)!r}, expected {value!r}"
        for name, value in check.expected.items()
        if facts.get(name) != value
    ]


def api_problems(port: int, checks: Iterable[SmokeCheck] = SMOKE_CHECKS) -> list[str]:
    problems = []
    for check in checks:
        try:
            answer = fetch(port, check.path)
        except OSError as exc:
            problems.append(f"GET {check.path}: no answer ({exc})")
            continue
        found = check_answer(check, answer)
        verdict = "ok" if not found else "WRONG"
        print(f"{answer.status} {answer.seconds:.3f}s {check.path}: {verdict}", flush=True)
        problems += found
    return problems


# ---- the command line --------------------------------------------------------------------


def main(argv: list[str]) -> int:
    usage = __doc__ or ""
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    if command == "summary":
        line, problems = summary_problems(sys.stdin, parse_expected(args))
        print(line)
    elif command == "port-free" and len(args) == 1:
        problems = port_free_problems(int(args[0]))
    elif command == "served-by" and len(args) == 2:
        problems = served_by_problems(int(args[0]), int(args[1]))
    elif command == "api" and len(args) == 1:
        problems = api_problems(int(args[0]))
    else:
        print(usage, file=sys.stderr)
        return 2
    for problem in problems:
        print(f"smoke: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
