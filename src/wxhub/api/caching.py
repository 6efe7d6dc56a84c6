"""HTTP caching of data responses: an ETag derived from the data version, and max-age.

The data changes once a night, when the job writes. Every write bumps the data version, so
an ETag made of (data version, path, query, representation) changes exactly when the answer
can. A client that sends the ETag back in ``If-None-Match`` gets a 304 without the database
doing more than one primary-key read. Between nights, shared caches may keep a response for
``MAX_AGE_S``; the job runs once a day, so an hour of staleness is the worst case.

Each worker also keeps the answers it has built, keyed by that same ETag, within a budget
(``WXHUB_API_CACHE_MB``): a popular page is built once per data version, after which it
costs one primary-key read of the data version. Streamed CSV exports are never kept.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import TypeVar

from flask import Response, current_app, g, request

from wxhub.api.db import current_data_version

MAX_AGE_S = 3600
CACHE_CONTROL = f"public, max-age={MAX_AGE_S}"

T = TypeVar("T")


def current_etag(representation: str) -> str:
    """The ETag of this request's answer; computed once per request."""
    etags: dict[str, str] = g.setdefault("etags", {})
    if representation not in etags:
        query = "&".join(f"{k}={v}" for k, v in sorted(request.args.items(multi=True)))
        key = f"{current_data_version()}|{request.path}|{query}|{representation}"
        etags[representation] = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
    return etags[representation]


def cached_answer(representation: str) -> Response | None:
    """A 304 when the client's copy is current, the stored answer when this worker has
    already built it for the current data version, else None (build the response)."""
    etag = current_etag(representation)
    if etag in request.if_none_match:
        return with_cache_headers(Response(status=304), representation)
    stored = response_cache().get(etag)
    if stored is None:
        return None
    response = Response(stored.body, mimetype=stored.mimetype)
    response.headers.extend(stored.headers)
    return with_cache_headers(response, representation)


def with_cache_headers(response: Response, representation: str) -> Response:
    """ETag, Cache-Control and Vary on a data response; a complete (not streamed) 200 is
    also kept for the next request that asks the same of the same data version."""
    etag = current_etag(representation)
    headers = response.headers
    # Written directly rather than through ``set_etag`` and ``vary``: this runs on every
    # data answer, and asking werkzeug's Headers for an absent name raises and catches an
    # HTTP exception inside it. The ETag is hex, so quoting it is the two quotes.
    present = {name.lower(): value for name, value in headers}
    headers["ETag"] = f'"{etag}"'
    headers["Cache-Control"] = CACHE_CONTROL
    if "vary" in present:
        response.vary.add("Accept")
    else:
        headers["Vary"] = "Accept"
    cache = response_cache()
    if cache.max_bytes and response.status_code == 200 and not response.is_streamed:
        kept = tuple(
            (name, present[name.lower()]) for name in _KEPT_HEADERS if name.lower() in present
        )
        cache.put(etag, StoredResponse(response.get_data(), response.mimetype or "", kept))
    return response


# Headers that belong to the answer rather than to one exchange (the request id does not).
_KEPT_HEADERS = ("Link", "Content-Disposition")


@dataclass(frozen=True)
class StoredResponse:
    body: bytes
    mimetype: str
    headers: tuple[tuple[str, str], ...]


class ResponseCache:
    """Answers already built, keyed by their ETag, within a budget of bytes (LRU).

    The ETag names the data version, so an entry can never be served for data it does not
    describe: after the nightly run every key changes and the old entries simply age out.
    One per worker process; a lock keeps the threaded development server safe.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.size_bytes = 0
        self._entries: OrderedDict[str, StoredResponse] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, etag: str) -> StoredResponse | None:
        with self._lock:
            stored = self._entries.get(etag)
            if stored is not None:
                self._entries.move_to_end(etag)
            return stored

    def put(self, etag: str, stored: StoredResponse) -> None:
        size = len(stored.body)
        if size > self.max_bytes // 8:  # one huge page must not flush everything else
            return
        with self._lock:
            previous = self._entries.pop(etag, None)
            if previous is not None:
                self.size_bytes -= len(previous.body)
            self._entries[etag] = stored
            self.size_bytes += size
            while self.size_bytes > self.max_bytes:
                _, evicted = self._entries.popitem(last=False)
                self.size_bytes -= len(evicted.body)

    def __len__(self) -> int:
        return len(self._entries)


def response_cache() -> ResponseCache:
    return current_app.extensions["wxhub.response_cache"]  # type: ignore[no-any-return]


class VersionedCache:
    """A small LRU of values computed from the data, dropped whenever the data version moves.

    The entries are kept per application (in its ``extensions``, like the response cache):
    a data version is a counter of one database, so two apps in one process on two
    databases can be at the same version with different data.

    Thread-safe for the threaded development server; gunicorn's sync workers have one
    thread and one cache each.
    """

    _instances = itertools.count()

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._slot = f"wxhub.versioned_cache.{next(self._instances)}"
        self._lock = threading.Lock()

    def put(self, key: Hashable, value: object) -> None:
        """Keep ``value`` for ``key`` at the current data version (read with it)."""
        version = current_data_version()
        with self._lock:
            self._keep(self._state(), version, key, value)

    def holds_recent(self, key: Hashable) -> bool:
        """Whether ``key`` has a value at the newest data version this cache has seen: a
        guess, made before the request reads the version, that ``get`` will not compute."""
        with self._lock:
            state = self._state()
            return (state.newest, key) in state.entries

    def get(self, key: Hashable, compute: Callable[[], T]) -> T:
        versioned = (current_data_version(), key)
        with self._lock:
            entries = self._state().entries
            if versioned in entries:
                entries.move_to_end(versioned)
                return entries[versioned]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            self._keep(self._state(), *versioned, value)
        return value

    def _keep(self, state: _CacheState, version: int, key: Hashable, value: object) -> None:
        state.entries[(version, key)] = value
        state.entries.move_to_end((version, key))
        state.newest = max(state.newest, version)
        while len(state.entries) > self.max_entries:
            state.entries.popitem(last=False)

    def _state(self) -> _CacheState:
        return current_app.extensions.setdefault(self._slot, _CacheState())  # type: ignore[no-any-return]


@dataclass
class _CacheState:
    """One application's entries of one VersionedCache, and the newest version among them."""

    entries: OrderedDict[tuple[int, Hashable], object] = field(default_factory=OrderedDict)
    newest: int = -1
