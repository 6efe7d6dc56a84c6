"""The API's database access: one engine per process, a connection per request."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy import Connection, Engine


def engine() -> Engine:
    return current_app.extensions["wxhub.engine"]  # type: ignore[no-any-return]


@contextmanager
def connection() -> Iterator[Connection]:
    """A connection for one request's reads."""
    with engine().connect() as conn:
        yield conn
