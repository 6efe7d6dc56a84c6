"""Keyset pagination, the same on every list.

A page is found by seeking to a key in the primary-key order, never by an OFFSET that grows
with the page number. ``next`` and ``prev`` carry an opaque cursor: the key to seek from, the
direction, the page number it leads to, and a digest of the filters it belongs to, with a
checksum so a damaged or hand-edited cursor is refused with a 400 rather than misread.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeGuard
from urllib.parse import urlencode

from sqlalchemy import Connection, and_, or_, tuple_
from sqlalchemy.sql.elements import ColumnElement

from wxhub.api.errors import ProblemError

CURSOR_VERSION = 1
_CHECKSUM_BYTES = 8

KeyValue = str | int | dt.date
Key = tuple[KeyValue, ...]


@dataclass(frozen=True)
class Cursor:
    """Where a page starts: after (or, going back, before) ``key``; it is page ``page``."""

    key: Key
    forward: bool
    page: int


def filters_digest(filters: Mapping[str, Any]) -> str:
    """A short digest of the filters a cursor belongs to."""
    canonical = json.dumps({k: str(v) for k, v in sorted(filters.items()) if v is not None})
    return hashlib.blake2b(canonical.encode(), digest_size=6).hexdigest()


def encode_cursor(cursor: Cursor, filters: Mapping[str, Any]) -> str:
    key = [v.isoformat() if isinstance(v, dt.date) else v for v in cursor.key]
    payload = json.dumps(
        [CURSOR_VERSION, key, cursor.forward, cursor.page, filters_digest(filters)],
        separators=(",", ":"),
    ).encode()
    checksum = hashlib.blake2b(payload, digest_size=_CHECKSUM_BYTES).digest()
    return base64.urlsafe_b64encode(checksum + payload).decode().rstrip("=")


def decode_cursor(token: str, filters: Mapping[str, Any], key_types: Sequence[type]) -> Cursor:
    """The cursor in ``token``; a 400 problem if it is damaged or belongs to other filters."""
    invalid = ProblemError(
        "The cursor is not valid: use the next and prev links exactly as returned.",
        parameter="cursor",
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        checksum, payload = raw[:_CHECKSUM_BYTES], raw[_CHECKSUM_BYTES:]
        if hashlib.blake2b(payload, digest_size=_CHECKSUM_BYTES).digest() != checksum:
            raise invalid
        version, key, forward, page, digest = json.loads(payload)
        if not _is_int(version) or version != CURSOR_VERSION:
            raise invalid
        if not isinstance(key, list) or len(key) != len(key_types):
            raise invalid
        typed = tuple(_typed(value, kind) for value, kind in zip(key, key_types, strict=True))
    except (ValueError, TypeError) as exc:
        raise invalid from exc
    if digest != filters_digest(filters):
        raise ProblemError(
            "The cursor belongs to other filters: change filters from the first page.",
            parameter="cursor",
        )
    if not isinstance(forward, bool) or not _is_int(page) or page < 1:
        raise invalid
    return Cursor(typed, forward, page)


def _is_int(value: Any) -> TypeGuard[int]:
    """A JSON integer (Python's bool is an int too: JSON's true is not one)."""
    return isinstance(value, int) and not isinstance(value, bool)


def _typed(value: Any, kind: type) -> KeyValue:
    if kind is dt.date:
        return dt.date.fromisoformat(value)
    if kind is int and _is_int(value):
        return value
    if kind is str and isinstance(value, str):
        return value
    raise ValueError(f"unexpected {type(value).__name__} in cursor key")


def beyond(
    conn: Connection,
    columns: Sequence[ColumnElement[Any]],
    key: Sequence[Any],
    *,
    forward: bool,
    inclusive: bool = False,
) -> ColumnElement[bool]:
    """Rows strictly after (or before) ``key`` in the order of ``columns``; ``key`` holds
    values, or bound parameters for a statement compiled once (api/reads.py).

    SQLite range-scans a row-value comparison; MySQL's optimizer does not for '>' on row
    values, so there the comparison is spelled out as a disjunction it turns into ranges.
    """
    if conn.dialect.name == "sqlite":
        row, value = tuple_(*columns), tuple_(*key)
        if forward:
            return row >= value if inclusive else row > value
        return row <= value if inclusive else row < value
    terms = []
    for depth in range(len(columns)):
        equal = [columns[i] == key[i] for i in range(depth)]
        last = len(columns) - 1
        column, bound = columns[depth], key[depth]
        if depth == last and inclusive:
            compare = column >= bound if forward else column <= bound
        else:
            compare = column > bound if forward else column < bound
        terms.append(and_(*equal, compare))
    return or_(*terms)


def link(path: str, params: Mapping[str, Any]) -> str:
    """A relative URL with the given query parameters (None values left out)."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{path}?{query}" if query else path


def link_header(next_url: str | None, prev_url: str | None) -> str | None:
    """RFC 8288 Link header value for the next and prev pages."""
    parts = []
    if next_url:
        parts.append(f'<{next_url}>; rel="next"')
    if prev_url:
        parts.append(f'<{prev_url}>; rel="prev"')
    return ", ".join(parts) or None
