"""Parser worker processes: parsing runs beside the loader, on the machine's second core.

The pool is forked at the very start of a job, before the job opens a database connection
or starts the progress bar's thread, so a worker inherits neither. Forking makes a worker
ready in milliseconds (a spawned one re-imports wxhub: about a second here). Each worker also
watches its parent and exits when the job is gone, so a job killed with SIGKILL leaves no
orphan behind. Where fork is not available, workers are spawned.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

PARENT_CHECK_INTERVAL_S = 0.5
# Below this many files to parse, starting a worker costs more than it saves.
MIN_FILES_FOR_WORKERS = 8


def default_workers() -> int:
    """One parser process beside the loader when there is a second core."""
    return 1 if (os.cpu_count() or 1) > 1 else 0


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
