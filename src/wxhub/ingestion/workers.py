"""Parser worker processes: parsing runs beside the loader, on the machine's second core.

The pool is forked at the very start of a job, before the job opens a database connection
or starts the progress bar's thread, so a worker inherits neither. Forking makes a worker
ready in milliseconds (a spawned one re-imports wxhub: about a second here). Each worker also
watches its parent and exits when the job is gone, so a job killed with SIGKILL leaves no
orphan behind. Where fork is not available, workers are spawned.

Whether a worker pays for itself depends on what is parsed (:func:`default_workers`): many
files, or one file heavy enough alone (a by-year file of every station, or any big file),
which is parsed in chunks a few ahead of the loader.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from wxhub.ingestion.sources import LocalFile, SourceFile

PARENT_CHECK_INTERVAL_S = 0.5
# Below this many files to parse, starting a worker costs more than it saves...
MIN_FILES_FOR_WORKERS = 8
# ... unless one of them is this big (as stored: a .gz is about a fifth of what it holds), or
# holds many stations' lines: seconds to minutes of parsing, which a worker runs beside the
# loader's work on the chunks before.
PARSE_HEAVY_BYTES = 4 * 1024 * 1024


# GHCN-Daily CSV by station carries about six lines per station-day (the elements wxhub does
# not keep, with their flags): there parsing, not loading, is the slow part, and one worker
# leaves the loader waiting for most of the run. Two keep it busy (167 stations' csv.gz on 2
# cores: 10.4 s -> 8.3 s; wx_data, where the loader is the slow part, keeps one: a second made
# it slower).
PARSE_BOUND_WORKERS = 2


def default_workers(sources: Sequence[SourceFile] = ()) -> int:
    """Parser processes beside the loader when there is a second core and the parsing is
    worth it (:func:`worker_pays_off`): two for GHCN CSV station files, else one."""
    if (os.cpu_count() or 1) < 2:
        return 0
    if not worker_pays_off(sources):
        return 0
    return PARSE_BOUND_WORKERS if parse_bound(sources) else 1


def parse_bound(sources: Sequence[SourceFile]) -> bool:
    """Whether most of ``sources`` are GHCN-Daily CSV station files, by their names (a
    ``.csv`` or ``.csv.gz`` named after a station), and many: known without reading them."""
    ghcn_csv = sum(
        1
        for source in sources
        if source.station_id is not None and source.name.endswith((".csv", ".csv.gz"))
    )
    return ghcn_csv >= MIN_FILES_FOR_WORKERS and 2 * ghcn_csv > len(sources)


def worker_pays_off(sources: Sequence[SourceFile]) -> bool:
    """Whether parsing ``sources`` takes long enough to gain from a worker process: many
    files, or one that is parse-heavy by itself, however few the files."""
    return len(sources) >= MIN_FILES_FOR_WORKERS or any(map(is_parse_heavy, sources))


def is_parse_heavy(source: SourceFile) -> bool:
    """A file of many stations (a by-year file: a gigabyte a recent year), or a big one, by
    its listed size (S3) or its size on disk; known without reading it."""
    if source.station_id is None:
        return True
    if source.version is not None:
        return source.version.size_bytes >= PARSE_HEAVY_BYTES
    if isinstance(source, LocalFile):
        try:
            return source.path.stat().st_size >= PARSE_HEAVY_BYTES
        except OSError:
            return False  # its read fails later, with the reason
    return False


@contextmanager
def parser_pool(workers: int) -> Iterator[ProcessPoolExecutor | None]:
    """A started pool of ``workers`` processes, or None for ``workers == 0``."""
    if workers <= 0:
        yield None
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_exit_with_parent,
        initargs=(os.getpid(),),
    )
    for _ in range(workers):
        pool.submit(int)  # start every worker now, while this process is still bare
    try:
        yield pool
    finally:
        pool.shutdown(cancel_futures=True)


def _exit_with_parent(parent_pid: int) -> None:
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_CHECK_INTERVAL_S)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()
