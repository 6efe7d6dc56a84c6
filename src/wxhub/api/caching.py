"""HTTP caching of data responses: an ETag derived from the data version, and max-age.

The data changes once a night, when the job writes. Every write bumps the data version, so
an ETag made of (data version, path, query, representation) changes exactly when the answer
can. A client that sends the ETag back in ``If-None-Match`` gets a 304 without the database
doing more than one primary-key read. Between nights, shared caches may keep a response for
``MAX_AGE_S``; the job runs once a day, so an hour of staleness is the worst case.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TypeVar

from flask import Response, request

from wxhub.api.db import current_data_version

MAX_AGE_S = 3600
CACHE_CONTROL = f"public, max-age={MAX_AGE_S}"

T = TypeVar("T")


def current_etag(representation: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
    key = f"{current_data_version()}|{request.path}|{query}|{representation}"
    return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()


def not_modified(representation: str) -> Response | None:
    """A 304 when the client's copy is current, else None (build the response)."""
    etag = current_etag(representation)
    if etag in request.if_none_match:
        response = Response(status=304)
        return with_cache_headers(response, representation)
    return None


def with_cache_headers(response: Response, representation: str) -> Response:
    response.set_etag(current_etag(representation))
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.vary.add("Accept")
    return response


class VersionedCache:
    """A small LRU of values computed from the data, dropped whenever the data version moves.

    Thread-safe for the threaded development server; gunicorn's sync workers have one
    thread and one cache each.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        versioned = (current_data_version(), key)
        with self._lock:
            if versioned in self._entries:
                self._entries.move_to_end(versioned)
                return self._entries[versioned]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._entries[versioned] = value
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value
