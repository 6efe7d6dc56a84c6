"""Soak the API as deployed: `wxhub serve` on MariaDB with the full data, wrk at concurrency 64
over a mix of the endpoints for 60 s, on loopback.

Passes only if nothing failed and the workers' memory held still:

- errors: every answer 2xx or 3xx (wrk's "Non-2xx or 3xx responses") and no socket error
  (connect, read, write, timeout) over the warm-up and the soak;
- memory: each gunicorn worker's resident memory (VmRSS from /proc/PID/status of the server's
  child processes) is sampled every few seconds; from the first sample after the warm-up to
  the last, no worker may grow by more than --max-growth (10%), and no worker may be
  replaced (a restarted worker would hide a leak).

The warm-up (--warmup seconds of the same traffic) brings the workers to their steady state
first: answer caches filled, every thread and pooled connection used, the allocator's high-water
mark reached at full concurrency. Memory climbs for the first minute of traffic and then lies
flat; with a 10 s warm-up one worker still grew 26% during the soak (to the same plateau), so
the default is 30 s (docs/benchmarks.md, "Soak").

The mix (a wrk Lua script written per run, requests chosen at random with these weights):
first pages of several stations, one station-year, yearly statistics, the station list, page
jumps (`page=N` across all observations), cursor pages (`next` links), CSV of one
station-year, and revalidations (`If-None-Match` with the page's ETag, answered 304).

    python bench/bench_soak.py [--seconds 60] [--connections 64] [--warmup 30]

Exit status 0 when the bounds hold, 1 otherwise. Traffic goes to 127.0.0.1 only; the run is
bounded by --warmup + --seconds (wrk's own -d) plus loading the data (about 15 s).
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bench_api import free_port
from bench_run import calibration_s, fresh_mysql_database, get_json, machine

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data" / "wx_data"
WXHUB = [sys.executable, "-m", "wxhub.cli"]
STATIONS = 8  # stations the mix asks about (from the station list)
READY_TIMEOUT_S = 30

# name -> weight (share of the requests, out of 100)
MIX = {
    "station first page": 20,
    "station-year page": 10,
    "yearly stats": 15,
    "station list": 10,
    "page jump": 10,
    "cursor page": 10,
    "CSV of a station-year": 5,
    "304 revalidation": 20,
}


@dataclass(frozen=True)
class Request:
    """One request of the mix: path and query, and the ETag to revalidate with, if any."""

    kind: str
    path: str
    etag: str | None = None


@dataclass
class Memory:
    """Resident memory of each worker, sampled over the soak."""

    times: list[float] = field(default_factory=list)
    rss_kb: list[dict[int, int]] = field(default_factory=list)  # one {pid: kB} per sample


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers: the server process's children (read from /proc, no scan)."""
    try:
        with open(f"/proc/{master}/task/{master}/children") as children:
            return sorted(int(pid) for pid in children.read().split())
    except OSError:
        return []


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def sample_memory(master: int, every_s: float, stop: threading.Event, memory: Memory) -> None:
    started = time.perf_counter()
    while True:
        sample = {pid: kb for pid in worker_pids(master) if (kb := rss_kb(pid)) is not None}
        memory.times.append(time.perf_counter() - started)
        memory.rss_kb.append(sample)
        if stop.wait(every_s):
            return


@contextmanager
def serve(database_url: str, workers: int | None) -> Iterator[tuple[str, int]]:
    """`wxhub serve` as deployed (default cache and threads); yields (base URL, its pid)."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "WXHUB_LOG_FORMAT": "json"}
    args = [*WXHUB, "serve", "--port", str(port)] + (["--workers", str(workers)] if workers else [])
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                get_json(f"{base}/readyz")
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise SystemExit("wxhub serve did not become ready") from None
                time.sleep(0.1)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def etag_of(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310  (loopback)  # nosec B310
        etag = response.headers["ETag"]
    if not etag:
        raise SystemExit(f"no ETag on {url}")
    return str(etag)


def build_mix(base: str) -> list[Request]:
    """The requests, found from the running API itself (stations, cursors, ETags)."""
    stations = get_json(f"{base}/api/stations?page_size={STATIONS}")["data"]
    total = get_json(f"{base}/api/weather")["pagination"]["total"]
    last_page = total // 100
    requests: list[Request] = []
    for k, station in enumerate(stations):
        sid = station["station_id"]
        year = 1986 + 3 * k
        first = f"/api/weather?station_id={sid}"
        one_year = f"{first}&start_date={year}-01-01&end_date={year}-12-31"
        requests += [
            Request("station first page", first),
            Request("station-year page", one_year),
            Request("yearly stats", f"/api/weather/stats?station_id={sid}"),
            Request("page jump", f"/api/weather?page={1 + (k + 1) * last_page // (STATIONS + 1)}"),
            Request("cursor page", get_json(base + first)["pagination"]["next"]),
            Request("CSV of a station-year", f"{one_year}&format=csv"),
            Request("304 revalidation", first, etag_of(base + first)),
        ]
    requests.append(Request("station list", "/api/stations"))
    requests.append(Request("station list", "/api/stations?page=2"))
    return requests


def lua_string(value: str) -> str:
    """A Lua string literal (the values are ASCII paths and quoted ETags)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lua_script(requests: list[Request]) -> str:
    """A wrk script: each request's weight is its kind's share of the mix, spread over the
    requests of that kind; statuses are counted per thread and summed in done()."""
    by_kind: dict[str, list[Request]] = {}
    for request in requests:
        by_kind.setdefault(request.kind, []).append(request)
    entries = []
    for kind, weight in MIX.items():
        for request in by_kind[kind]:
            headers = "{}"
            if request.etag:
                headers = (
                    "{[" + lua_string("If-None-Match") + "] = " + lua_string(request.etag) + "}"
                )
            share = weight / len(by_kind[kind])
            entries.append(f"  {{{share:.4f}, {lua_string(request.path)}, {headers}}},")
    return (
        "-- Generated by bench/bench_soak.py: a weighted random mix of wxhub requests.\n"
        "local mix = {\n"
        + "\n".join(entries)
        + "\n}\n"
        + r"""
local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

local built, cumulative, total = {}, {}, 0

function init(args)
  math.randomseed(1000 + id)
  for i, entry in ipairs(mix) do
    total = total + entry[1]
    cumulative[i] = total
    built[i] = wrk.format("GET", entry[2], entry[3])
  end
  statuses = {}
end

function request()
  local r = math.random() * total
  for i = 1, #cumulative do
    if r <= cumulative[i] then return built[i] end
  end
  return built[#built]
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local sums = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      sums[status] = (sums[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(sums) do table.insert(parts, status .. "=" .. n) end
  local e = summary.errors
  io.write(string.format("SOAK requests=%d connect=%d read=%d write=%d timeout=%d status=%d\n",
    summary.requests, e.connect, e.read, e.write, e.timeout, e.status))
  io.write("SOAK statuses " .. table.concat(parts, " ") .. "\n")
end
"""
    )


@dataclass
class Traffic:
    """What wrk reported for one pass."""

    seconds: float
    requests: int
    errors: dict[str, int]
    statuses: dict[int, int]
    latency_ms: dict[str, float]
    output: str


def run_wrk(base: str, script: Path, options: argparse.Namespace, seconds: int) -> Traffic:
    args = ["wrk", f"-t{options.wrk_threads}", f"-c{options.connections}", f"-d{seconds}s"]
    args += [f"--timeout={options.timeout}s", "--latency", "-s", str(script), base]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    summary = re.search(r"^SOAK requests=(\d+) (.*)$", out, re.M)
    status_line = re.search(r"^SOAK statuses ?(.*)$", out, re.M)
    if not summary or not status_line:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    errors = {k: int(v) for k, v in (p.split("=") for p in summary.group(2).split())}
    statuses = {int(k): int(v) for k, v in (p.split("=") for p in status_line.group(1).split())}
    latency = {}
    for percent in ("50", "90", "99"):
        value, unit = re.search(rf"^\s+{percent}%\s+([\d.]+)(\w+)", out, re.M).groups()  # type: ignore[union-attr]
        latency[f"p{percent}"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    value, unit = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(\w+)", out, re.M).groups()  # type: ignore[union-attr]
    latency["max"] = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return Traffic(seconds, int(summary.group(1)), errors, statuses, latency, out)


def error_count(traffic: Traffic) -> int:
    """Socket errors plus answers that are not 2xx/3xx (wrk's `status` count)."""
    return sum(traffic.errors.values())


def load(database_url: str) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "WXHUB_LOG_FORMAT": "json"}
    subprocess.run([*WXHUB, "run", str(DATA)], env=env, stdout=subprocess.DEVNULL, check=True)


def memory_report(memory: Memory, max_growth: float) -> tuple[list[str], bool]:
    """Markdown lines for each worker's memory, and whether every worker stayed in bounds."""
    first, last = memory.rss_kb[0], memory.rss_kb[-1]
    ok = bool(first) and set(first) == set(last)
    lines = [
        "| worker | RSS MB, first sample | RSS MB, last | max | growth |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for number, pid in enumerate(sorted(first), start=1):
        series = [s[pid] for s in memory.rss_kb if pid in s]
        growth = (series[-1] - series[0]) / series[0]
        ok &= growth <= max_growth
        lines.append(
            f"| {number} | {series[0] / 1024:.1f} | {series[-1] / 1024:.1f} | "
            f"{max(series) / 1024:.1f} | {growth:+.1%} |"
        )
    if set(first) != set(last):
        lines.append(f"\nWorkers changed during the soak: {sorted(first)} -> {sorted(last)}")
    totals = " ".join(f"{sum(s.values()) / 1024:.0f}" for s in memory.rss_kb)
    every = memory.times[1] - memory.times[0] if len(memory.times) > 1 else 0
    lines.append(f"\nAll workers' RSS MB, every {every:.0f} s: {totals}")
    return lines, ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=60, help="length of the soak")
    parser.add_argument("--warmup", type=int, default=30, help="seconds of traffic before it")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=5, help="wrk's per-request timeout, s")
    parser.add_argument("--workers", type=int, default=None, help="default: as wxhub serve")
    parser.add_argument("--sample-every", type=float, default=3.0, help="seconds")
    parser.add_argument("--max-growth", type=float, default=0.10)
    parser.add_argument(
        "--mysql-url",
        default=os.environ.get("WXHUB_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/"),
    )
    options = parser.parse_args()

    calibration_before = calibration_s()
    with (
        fresh_mysql_database(options.mysql_url) as url,
        tempfile.TemporaryDirectory(prefix="wxhub-soak-") as folder,
    ):
        load(url)
        with serve(url, options.workers) as (base, master):
            requests = build_mix(base)
            script = Path(folder) / "mix.lua"
            script.write_text(lua_script(requests))
            warmup = run_wrk(base, script, options, options.warmup)
            memory = Memory()
            stop = threading.Event()
            sampler = threading.Thread(
                target=sample_memory, args=(master, options.sample_every, stop, memory)
            )
            sampler.start()
            try:
                soak = run_wrk(base, script, options, options.seconds)
            finally:
                stop.set()
                sampler.join()

    if not report(
        options,
        requests=requests,
        warmup=warmup,
        soak=soak,
        memory=memory,
        calibration_before=calibration_before,
    ):
        raise SystemExit(1)


def report(
    options: argparse.Namespace,
    *,
    requests: list[Request],
    warmup: Traffic,
    soak: Traffic,
    memory: Memory,
    calibration_before: float,
) -> bool:
    """Print the Markdown report; True when the run stayed within the bounds."""
    memory_lines, memory_ok = memory_report(memory, options.max_growth)
    print(f"Machine: {machine()}")
    print(
        f"Calibration (10M empty Python loop turns): {calibration_before:.2f} s before, "
        f"{calibration_s():.2f} s after\n"
    )
    print(
        f"#### Soak: MariaDB, full data, {len(memory.rss_kb[0])} workers as `wxhub serve`, "
        f"wrk -c{options.connections} for {options.seconds} s after {options.warmup} s warm-up, "
        f"{len(requests)} distinct requests\n"
    )
    passes = (warmup, soak)

    def row(name: str, values: list[str]) -> None:
        print(f"| {name} | " + " | ".join(values) + " |")

    print("| figure | warm-up | soak |")
    print("| --- | ---: | ---: |")
    row("seconds", [str(t.seconds) for t in passes])
    row("requests", [f"{t.requests:,}" for t in passes])
    row("requests/s", [f"{t.requests / t.seconds:,.0f}" for t in passes])
    for code in sorted(set(warmup.statuses) | set(soak.statuses)):
        row(f"HTTP {code}", [f"{t.statuses.get(code, 0):,}" for t in passes])
    for kind in ("status", "connect", "read", "write", "timeout"):
        name = "non-2xx/3xx answers" if kind == "status" else f"socket errors: {kind}"
        row(name, [str(t.errors[kind]) for t in passes])
    for key in ("p50", "p90", "p99", "max"):
        row(f"latency {key} ms", [f"{t.latency_ms[key]:.1f}" for t in passes])
    print("\nMix: " + ", ".join(f"{kind} {weight}%" for kind, weight in MIX.items()) + "\n")
    print("\n".join(memory_lines))
    median_total = statistics.median(sum(s.values()) for s in memory.rss_kb) / 1024
    print(f"\nMedian of all workers' RSS over the soak: {median_total:.0f} MB")

    problems = []
    errors = error_count(warmup) + error_count(soak)
    if errors:
        problems.append(f"{errors} errors")
    if not memory_ok:
        problems.append(f"worker memory grew above {options.max_growth:.0%} or workers changed")
    if problems:
        print(f"\nFAILED: {'; '.join(problems)}")
        return False
    print(f"\nPASSED: zero errors, no worker grew above {options.max_growth:.0%}")
    return True


if __name__ == "__main__":
    main()
