"""The job under faults: killed anywhere, the database going away, two runs at once.

Every test ends the same way: after the fault, one more ordinary run, and the tables equal,
row for row, those of one clean run of the same files.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.engine import URL

from tests.conftest import bench_module, throwaway_mysql_database
from tests.ingestion.test_ingest import copy_real_files, snapshot
from tests.tcp_proxy import TcpProxy, proxy_to
from wxhub.db import migrate
from wxhub.db.engine import make_engine
from wxhub.db.lock import LockBusy, LockLost, job_lock, server_lock_name
from wxhub.db.schema import ingested_files, job_runs, weather_observations
from wxhub.ingestion.ledger import utcnow
from wxhub.ingestion.sources import resolve_sources
from wxhub.job import EXIT_FAILED, EXIT_OK, Guard, run_job

FILES = 12
KILL_POINTS = 20
JOB_TIMEOUT_S = 180
LOCK_RELEASE_S = 5


def job_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "wxhub.ingestion", str(folder)]


def job_env(url: URL, **extra: str) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DB_"))},
        "DATABASE_URL": url.render_as_string(hide_password=False),
        "WXHUB_LOG_FORMAT": "json",
        **extra,
    }


def run_to_end(folder: Path, url: URL, **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        job_command(folder),
        env=job_env(url, **extra),
        capture_output=True,
        text=True,
        timeout=JOB_TIMEOUT_S,
        check=False,
    )


def log_records(output: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def files_loaded(url: URL) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ingested_files)).scalar() or 0)
    except Exception:  # no tables yet: killed before the migration
        return 0
    finally:
        engine.dispose()


def snapshot_of(url: URL) -> dict[str, list[tuple[object, ...]]]:
    engine = make_engine(url)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


class Backend:
    """Fresh databases of one backend, as many as a test needs."""

    def __init__(self, name: str, tmp_path: Path) -> None:
        self.name, self.tmp_path, self.count = name, tmp_path, 0

    @contextmanager
    def fresh(self) -> Iterator[URL]:
        self.count += 1
        if self.name == "sqlite":
            yield URL.create("sqlite", database=str(self.tmp_path / f"db{self.count}.db"))
        else:
            with throwaway_mysql_database() as url:
                yield url


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "mysql":
        request.getfixturevalue("mysql_database")  # skips (or fails under CI) without a server
    return Backend(request.param, tmp_path)


# ---- killed anywhere ---------------------------------------------------------------------

# The moments of a run a kill lands at, each read from the run's own JSON log as it happens
# (an event, not a clock, so a fast or a busy machine kills at the same places): just after the
# schema migration committed, and just after each file committed (the next file, or after the
# last one the aggregation, is then under way, so most kills fall inside a transaction).
EVENT_POINTS = [("migrate", 1)] + [("file", k) for k in range(1, FILES + 1)]
# Seven more in the first second (start-up, connecting, the migration itself), which no log
# line marks: these are times, so a run that finished first is not killed by them; only the
# event points are counted.
EARLY_POINTS = KILL_POINTS - len(EVENT_POINTS)


def kill_points() -> list[tuple[str, float]]:
    rng = random.Random(20261127)  # noqa: S311  (reproducible kill times, not a secret)
    early = [("seconds", 0.1 * (i + 1) + rng.uniform(0, 0.05)) for i in range(EARLY_POINTS)]
    return early + [(event, float(count)) for event, count in EVENT_POINTS]


@pytest.mark.slow
def test_a_run_killed_at_twenty_points_then_rerun_equals_one_clean_run(
    backend: Backend, tmp_path: Path
):
    folder = copy_real_files(tmp_path / "in", FILES)
    with backend.fresh() as clean_url:
        assert run_to_end(folder, clean_url).returncode == EXIT_OK
        clean = snapshot_of(clean_url)

    points = kill_points()
    killed_at_events, loaded_at_kill = 0, set()
    for kind, mark in points:
        with backend.fresh() as url:
            process = subprocess.Popen(
                job_command(folder),
                env=job_env(url, PYTHONUNBUFFERED="1"),
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            if kind == "seconds":
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=mark)
            else:
                wait_for_event(process, kind, int(mark))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed_at_events += kind != "seconds"
            process.communicate(timeout=JOB_TIMEOUT_S)
            loaded_at_kill.add(files_loaded(url))

            rerun = run_to_end(folder, url)

            assert rerun.returncode == EXIT_OK, rerun.stdout[-2000:]
            assert snapshot_of(url) == clean, f"killed at {kind} {mark}"
    assert len(points) == KILL_POINTS
    assert killed_at_events >= len(EVENT_POINTS) - 1  # the last may find the aggregation done
    assert len(loaded_at_kill) >= FILES // 2, loaded_at_kill  # spread all along the run


def wait_for_event(process: subprocess.Popen[str], event: str, count: int) -> None:
    """Read the run's log until its ``count``-th ``event`` record (or its end)."""
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        if line.startswith("{") and json.loads(line).get("event") == event:
            seen += 1
            if seen == count:
                return


# ---- two runs at once --------------------------------------------------------------------


def _rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(weather_observations)).scalar())


def test_a_run_that_finds_another_in_progress_does_nothing_and_exits_0(
    engine: Engine, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    folder = copy_real_files(tmp_path / "in", 2)
    holder = make_engine(engine.url)

    with job_lock(holder):
        code = run_job(engine, "run", sources=resolve_sources([str(folder)]))

    assert code == EXIT_OK
    assert _rows(engine) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(job_runs)).scalar() == 0
    assert "another wxhub run holds the job lock" in caplog.text
    holder.dispose()


def test_with_wait_a_run_waits_for_the_one_in_progress_then_does_its_work(
    engine: Engine, tmp_path: Path
):
    folder = copy_real_files(tmp_path / "in", 2)
    holder = make_engine(engine.url)
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with job_lock(holder):
            taken.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    taken.wait(10)
    threading.Timer(1.5, release.set).start()
    started = time.monotonic()
    code = run_job(engine, "run", sources=resolve_sources([str(folder)]), guard=Guard(wait=True))
    waited = time.monotonic() - started
    thread.join()

    assert code == EXIT_OK
    assert waited >= 1.0
    assert _rows(engine) > 0
    holder.dispose()


def test_the_lock_is_taken_once_at_a_time_and_released_after(engine: Engine):
    with (
        job_lock(engine),
        pytest.raises(LockBusy, match="--wait"),
        job_lock(make_engine(engine.url)),
    ):
        pass  # pragma: no cover

    with job_lock(engine):
        pass  # free again


def test_two_runs_started_at_once_load_every_file_exactly_once(engine: Engine, tmp_path: Path):
    folder = copy_real_files(tmp_path / "in", 6)
    url = engine.url
    processes = [
        subprocess.Popen(job_command(folder), env=job_env(url), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=JOB_TIMEOUT_S)[0] for p in processes]

    assert [p.returncode for p in processes] == [EXIT_OK, EXIT_OK]
    summaries = [r for out in outputs for r in log_records(out) if r.get("event") == "summary"]
    busy = [r for out in outputs for r in log_records(out) if r.get("event") == "lock_busy"]
    assert sum(s["files_loaded"] for s in summaries) == 6  # one did the work
    assert len(summaries) + len(busy) == 2  # the other found it busy, or found nothing to do
    clean = make_engine(URL.create("sqlite", database=str(tmp_path / "clean.db")))
    assert run_job(clean, "run", sources=resolve_sources([str(folder)])) == EXIT_OK
    assert snapshot(engine)["observations"] == snapshot(clean)["observations"]


def test_a_killed_run_leaves_no_lock_behind(engine: Engine, tmp_path: Path):
    folder = copy_real_files(tmp_path / "in", 20)
    process = subprocess.Popen(
        job_command(folder), env=job_env(engine.url), stdout=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while files_loaded(engine.url) < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)

    # Killed mid-run, holding the lock: a run that had ended would have released it itself.
    assert process.wait() == -signal.SIGKILL, "the run ended before it was killed"
    assert 1 <= files_loaded(engine.url) < 20

    # The server frees a dead client's lock as soon as it sees the connection closed.
    deadline = time.monotonic() + LOCK_RELEASE_S
    while True:
        try:
            with job_lock(engine):
                break
        except LockBusy:
            assert time.monotonic() < deadline, "the killed run's lock was never released"
            time.sleep(0.05)


# ---- the lock's own connection lost mid-run (MariaDB) -------------------------------------


def kill_lock_connection(engine: Engine) -> None:
    """What a database restart does to the lock: its connection is gone, and the lock free."""
    name = server_lock_name(engine)
    admin = make_engine(engine.url)
    try:
        with admin.connect() as conn:
            holder = conn.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar()
            assert holder is not None, "nobody holds the lock"
            conn.execute(text(f"KILL CONNECTION {int(holder)}"))
            # KILL returns before the session is gone: wait until the server has freed it.
            deadline = time.monotonic() + LOCK_RELEASE_S
            while conn.execute(text("SELECT IS_FREE_LOCK(:n)"), {"n": name}).scalar() != 1:
                assert time.monotonic() < deadline, "the killed connection kept the lock"
                time.sleep(0.02)
    finally:
        admin.dispose()


def write_a_run_record(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(job_runs).values(command="t", status="t", started_at=utcnow()))


def run_records(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(job_runs)).scalar_one())


@pytest.mark.mysql
def test_a_lock_lost_with_its_connection_is_taken_again_before_the_next_commit(
    mysql_database: URL, caplog: pytest.LogCaptureFixture
):
    engine, other = make_engine(mysql_database), make_engine(mysql_database)
    migrate.upgrade(engine)
    with job_lock(engine):
        kill_lock_connection(engine)
        write_a_run_record(engine)

        assert run_records(other) == 1
        assert [r for r in caplog.records if r.__dict__.get("event") == "lock_retaken"]
        with pytest.raises(LockBusy), job_lock(other):  # ours again: no other run gets it
            pass
    with job_lock(other):  # and released at the end as usual
        pass
    engine.dispose()
    other.dispose()


@pytest.mark.mysql
def test_a_lost_lock_taken_by_another_run_refuses_the_next_commit_and_keeps_none_of_it(
    mysql_database: URL,
):
    engine, other = make_engine(mysql_database), make_engine(mysql_database)
    migrate.upgrade(engine)
    with job_lock(engine), engine.connect() as conn:
        kill_lock_connection(engine)
        with job_lock(other):  # a second run slips in while the first one's lock is gone
            with pytest.raises(LockLost), conn.begin():
                conn.execute(insert(job_runs).values(command="a", status="t", started_at=utcnow()))
            assert run_records(other) == 0
        # The second run is done: the next commit on the same connection takes the lock
        # again and carries its own row only, never the refused one.
        with conn.begin():
            conn.execute(insert(job_runs).values(command="b", status="t", started_at=utcnow()))
    with other.connect() as check:
        assert check.execute(select(job_runs.c.command)).scalars().all() == ["b"]
    engine.dispose()
    other.dispose()


@pytest.mark.mysql
@pytest.mark.slow
def test_a_run_whose_lock_went_with_a_restart_stops_when_another_run_took_it(
    proxied: tuple[TcpProxy, URL, URL], tmp_path: Path
):
    proxy, through_proxy, direct = proxied
    folder = copy_real_files(tmp_path / "in", FILES)
    process = start_job(folder, through_proxy, retry_s=60)
    wait_until_loaded(direct, 3)
    proxy.cut()  # a restart: the job's connections, its lock's among them, are gone
    other = make_engine(direct)
    deadline = time.monotonic() + LOCK_RELEASE_S
    with contextlib.ExitStack() as second_run:
        while True:  # the second run takes the lock as soon as the server has freed it
            try:
                second_run.enter_context(job_lock(other))
                break
            except LockBusy:
                assert time.monotonic() < deadline, "the cut connection kept the lock"
                time.sleep(0.02)
        loaded_when_taken = files_loaded(direct)
        proxy.restore()
        output, _ = process.communicate(timeout=JOB_TIMEOUT_S)  # the first run ends meanwhile
        assert files_loaded(direct) == loaded_when_taken  # nothing slipped in under our lock
    other.dispose()
    records = log_records(output)

    assert process.returncode == EXIT_OK, output[-2000:]
    assert loaded_when_taken < FILES
    assert [r["event"] for r in records if r.get("event") == "lock_lost"] == ["lock_lost"]
    assert [r["status"] for r in records if r.get("event") == "summary"] == ["superseded"]
    assert run_to_end(folder, through_proxy).returncode == EXIT_OK
    assert snapshot_of(direct) == clean_snapshot(folder)


# ---- the database going away (MariaDB behind a proxy the test can cut) --------------------


@pytest.fixture
def proxied(mysql_database: URL) -> Iterator[tuple[TcpProxy, URL, URL]]:
    """(proxy, URL through the proxy, direct URL) of a fresh, migrated MariaDB database."""
    direct = make_engine(mysql_database)
    migrate.upgrade(direct)
    direct.dispose()
    with proxy_to(mysql_database) as proxy:
        yield proxy, proxy.url_for(mysql_database), mysql_database


def start_job(folder: Path, url: URL, *, retry_s: int) -> subprocess.Popen[str]:
    env = job_env(url, WXHUB_DB_RETRY_S=str(retry_s))
    return subprocess.Popen(job_command(folder), env=env, stdout=subprocess.PIPE, text=True)


def wait_until_loaded(url: URL, count: int) -> None:
    deadline = time.monotonic() + 60
    while files_loaded(url) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def clean_snapshot(folder: Path) -> dict[str, list[tuple[object, ...]]]:
    with throwaway_mysql_database() as url:
        assert run_to_end(folder, url).returncode == EXIT_OK
        return snapshot_of(url)


@pytest.mark.mysql
def test_a_database_that_is_down_at_start_is_waited_for(
    proxied: tuple[TcpProxy, URL, URL], tmp_path: Path
):
    proxy, through_proxy, direct = proxied
    folder = copy_real_files(tmp_path / "in", 3)
    proxy.cut()
    process = start_job(folder, through_proxy, retry_s=60)
    time.sleep(2.5)
    proxy.restore()
    output, _ = process.communicate(timeout=JOB_TIMEOUT_S)

    assert process.returncode == EXIT_OK, output[-2000:]
    assert any(r.get("event") == "db_retry" for r in log_records(output))
    assert snapshot_of(direct) == clean_snapshot(folder)


@pytest.mark.mysql
@pytest.mark.slow
def test_a_database_restarted_in_the_middle_of_a_run_loses_and_doubles_nothing(
    proxied: tuple[TcpProxy, URL, URL], tmp_path: Path
):
    proxy, through_proxy, direct = proxied
    folder = copy_real_files(tmp_path / "in", FILES)
    process = start_job(folder, through_proxy, retry_s=60)
    wait_until_loaded(direct, 3)
    proxy.cut()
    time.sleep(1.5)
    proxy.restore()
    output, _ = process.communicate(timeout=JOB_TIMEOUT_S)

    assert process.returncode == EXIT_OK, output[-2000:]
    assert any(r.get("event") == "db_retry" for r in log_records(output))
    assert snapshot_of(direct) == clean_snapshot(folder)


@pytest.mark.mysql
@pytest.mark.slow
def test_a_database_gone_longer_than_the_retry_budget_fails_with_one_line_then_recovers(
    proxied: tuple[TcpProxy, URL, URL], tmp_path: Path
):
    proxy, through_proxy, direct = proxied
    folder = copy_real_files(tmp_path / "in", FILES)
    process = start_job(folder, through_proxy, retry_s=2)
    wait_until_loaded(direct, 3)
    proxy.cut()
    started = time.monotonic()
    output, _ = process.communicate(timeout=JOB_TIMEOUT_S)
    gave_up_after = time.monotonic() - started
    errors = [r for r in log_records(output) if r["level"] == "ERROR" and "error:" in r["message"]]

    assert process.returncode == EXIT_FAILED
    assert gave_up_after < 30
    assert len(errors) == 1
    assert "did not answer for 2 s" in errors[0]["message"]
    assert "\n" not in errors[0]["message"]

    proxy.restore()
    assert run_to_end(folder, through_proxy).returncode == EXIT_OK
    assert snapshot_of(direct) == clean_snapshot(folder)


# ---- shards side by side -------------------------------------------------------------------


@pytest.mark.slow
def test_shards_running_side_by_side_give_the_tables_of_one_clean_run(
    engine: Engine, tmp_path: Path
):
    folder = copy_real_files(tmp_path / "in", FILES)
    processes = [
        subprocess.Popen(
            [*job_command(folder), "--shard", f"{k}/3"],
            env=job_env(engine.url),
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in (1, 2, 3)
    ]
    outputs = [p.communicate(timeout=JOB_TIMEOUT_S)[0] for p in processes]

    assert [p.returncode for p in processes] == [EXIT_OK] * 3, outputs
    summaries = [r for out in outputs for r in log_records(out) if r.get("event") == "summary"]
    assert sum(s["files_loaded"] for s in summaries) == FILES
    with Backend(engine.dialect.name, tmp_path).fresh() as clean_url:
        assert run_to_end(folder, clean_url).returncode == EXIT_OK
        assert snapshot(engine) == snapshot_of(clean_url)  # statistics and an empty queue too


# ---- killed inside a big file's set-based steps (MariaDB) ---------------------------------

# The job, with a by-year file counted as big (streamed in chunks through the heap table) from
# 64 KB on, so a file of a few MB takes the path a gigabyte one takes.
SMALL_CHUNKS_JOB = (
    "import sys, wxhub.ingestion.main as m\n"
    "m.MAX_FILE_BYTES, m.CHUNK_BYTES = 64 * 1024, 256 * 1024\n"
    "from wxhub.cli import run\n"
    "run.main(args=sys.argv[1:], prog_name='wxhub run')\n"
)
NIGHT_STATIONS = 300
NIGHTS = (150, 151)


@pytest.fixture(scope="module")
def year_so_far(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The by-year file of 2014 as it stands on each night of ``NIGHTS`` (the night before's
    lines and one more day for every station: 45,000 station-days, 8 MB), made once."""
    made = tmp_path_factory.mktemp("year-so-far")
    files = {}
    for night in NIGHTS:
        files[night] = made / f"day{night}" / "2014.csv"
        bench_module("gen_ghcn").synthetic_by_year(
            files[night], year=2014, stations=NIGHT_STATIONS, seed=13, last_day=night
        )
    return files


def night_folder(folder: Path, year_so_far: dict[int, Path], night: int) -> Path:
    """``folder`` holding that night's file under its one name, as NOAA's bucket does."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(year_so_far[night], folder / "2014.csv")
    return folder


def run_small_chunks(folder: Path, url: URL) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", SMALL_CHUNKS_JOB, str(folder)],
        env=job_env(url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def run_small_chunks_to_end(folder: Path, url: URL) -> None:
    process = run_small_chunks(folder, url)
    output, _ = process.communicate(timeout=JOB_TIMEOUT_S)
    assert process.returncode == EXIT_OK, output[-2000:]


def wait_for_statement(url: URL, process: subprocess.Popen[str], *fragments: str) -> bool:
    """Watch the server's process list until a statement on ``url``'s database holding every
    fragment runs (True), or the job ends first (False)."""
    watcher = make_engine(url)
    query = text(
        "SELECT info FROM information_schema.processlist WHERE db = :db AND info IS NOT NULL"
    )
    deadline = time.monotonic() + JOB_TIMEOUT_S
    try:
        with watcher.connect() as conn:
            while process.poll() is None and time.monotonic() < deadline:
                for (info,) in conn.execute(query, {"db": url.database}):
                    if all(f in info for f in fragments):
                        return True
        return False
    finally:
        watcher.dispose()


@pytest.mark.mysql
@pytest.mark.parametrize(
    ("step", "fragments"),
    [
        # The heap's chunks folded into one row per station-day (ordered ON DUPLICATE KEY).
        ("the fold", ("INSERT INTO wxhub_staging_observations", "wxhub_staging_heap")),
        # The one join of the staged days with the table, keeping the changes.
        ("the join", ("INSERT INTO wxhub_staging_changes", "weather_observations")),
    ],
)
def test_a_night_killed_inside_a_big_files_set_based_step_then_rerun_equals_one_clean_night(
    mysql_database: URL,
    tmp_path: Path,
    year_so_far: dict[int, Path],
    step: str,
    fragments: tuple[str, ...],
):
    with throwaway_mysql_database() as clean_url:
        for night in NIGHTS:
            run_small_chunks_to_end(night_folder(tmp_path / "clean", year_so_far, night), clean_url)
        clean = snapshot_of(clean_url)

    url, folder = mysql_database, tmp_path / "in"
    run_small_chunks_to_end(night_folder(folder, year_so_far, NIGHTS[0]), url)
    before = snapshot_of(url)

    night = run_small_chunks(night_folder(folder, year_so_far, NIGHTS[1]), url)
    seen = wait_for_statement(url, night, *fragments)
    night.send_signal(signal.SIGKILL)
    output, _ = night.communicate(timeout=JOB_TIMEOUT_S)
    assert seen, f"the night ended before {step} was seen: {output[-2000:]}"
    assert night.returncode == -signal.SIGKILL

    # Nothing of the killed night is left: the file's transaction went with its connection.
    assert snapshot_of(url) == before
    run_small_chunks_to_end(folder, url)
    assert snapshot_of(url) == clean, f"killed in {step}"
