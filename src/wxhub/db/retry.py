"""Riding out a database that goes away for a while (a restart, an RDS fail-over).

The nightly job must not give up at the first refused connection: RDS Multi-AZ fail-over
takes one to two minutes. Each step of the job that talks to the database (migrate, one
file, the aggregation, the run record) is a unit that either commits whole or not at all,
so a step that failed because the connection failed can simply be run again. This module
runs it again, with exponential backoff, for a bounded time, then gives up with one line
that says how long it tried.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from wxhub.db.engine import is_connection_failure

log = logging.getLogger(__name__)

T = TypeVar("T")

DEFAULT_RETRY_S = 120.0
FIRST_DELAY_S = 0.5
MAX_DELAY_S = 10.0


class DatabaseUnavailable(RuntimeError):  # noqa: N818  (reads as the condition it names)
    """The database did not answer for the whole retry budget."""


def with_retries(
    engine: Engine,
    step: Callable[[], T],
    *,
    what: str,
    budget_s: float = DEFAULT_RETRY_S,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``step()``, run again while its failure is a lost or refused connection, for at
    most ``budget_s`` seconds in all; other errors pass through at once."""
    deadline = time.monotonic() + budget_s
    delay = FIRST_DELAY_S
    attempt = 1
    while True:
        try:
            return step()
        except DBAPIError as exc:
            if not is_connection_failure(exc):
                raise
            # Connections in the pool went with the server: drop them all, not one by one.
            engine.dispose()
            left = deadline - time.monotonic()
            if left <= 0:
                raise DatabaseUnavailable(
                    f"the database did not answer for {budget_s:g} s ({what}): "
                    f"{_reason(exc)}; nothing of that step was kept, run the job again"
                ) from exc
            # Jitter, so retrying tasks spread out: no secret, the standard generator is right.
            jitter = random.uniform(0.8, 1.2)  # noqa: S311  # nosec B311
            wait = min(delay * jitter, left, MAX_DELAY_S)
            log.warning(
                "the database does not answer (%s, attempt %d): %s; retrying in %.1f s",
                what,
                attempt,
                _reason(exc),
                wait,
                extra={"event": "db_retry", "step": what, "attempt": attempt, "wait_s": wait},
            )
            sleep(wait)
            delay *= 2
            attempt += 1


def _reason(exc: DBAPIError) -> str:
    return str(exc.orig).splitlines()[0] if exc.orig is not None else str(exc).splitlines()[0]
