"""One list endpoint's page: filters, keyset seek, total, links, and the JSON body.

Every list (stations, statistics, observations) answers the same way:
``{"data": [...], "pagination": {"page", "page_size", "total", "next", "prev"}}`` with the
same links in a ``Link`` header. A route supplies its filtered query, its key columns, how to
count its total cheaply and how to find the first key of page N without an OFFSET scan.

A route's query can also come in legs, each one value of an indexed filter (one state of
``state=IL,IN``): each leg is sought and limited alone, so each reads one index range of at
most a page, and the page is their merge. One query with ``IN`` would read every matching
row to sort them, or scan the key order for matches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from flask import Response
from sqlalchemy import Connection, Row, Select, select, union_all
from sqlalchemy.sql.elements import ColumnElement

from wxhub.api.caching import with_cache_headers
from wxhub.api.pagination import (
    Cursor,
    Key,
    beyond,
    decode_cursor,
    encode_cursor,
    link,
    link_header,
)


@dataclass(frozen=True)
class PageRequest:
    page: int
    page_size: int
    cursor: str | None


# A page's rows: (key to seek from or None, forward, inclusive, how many) -> rows in that
# direction's order. Rows are sequences (the driver's tuples, or SQLAlchemy rows).
Seek = Callable[[Key | None, bool, bool, int], Sequence[Sequence[Any]]]


@dataclass(frozen=True)
class Listing:
    """How one resource is listed: its key's types, where the key is in a row, and how a
    row becomes an item."""

    path: str
    key_types: Sequence[type]
    key_positions: Sequence[int]
    to_item: Callable[[Sequence[Any]], dict[str, Any]]

    def respond(
        self,
        seek: Seek,
        filters: Mapping[str, Any],
        paging: PageRequest,
        *,
        total: int,
        first_key_of_page: Callable[[int], Key | None] | None = None,
        rows_from: Callable[[int, int], Sequence[Sequence[Any]]] | None = None,
    ) -> Response:
        """The page asked for, as JSON with pagination links.

        A page jump (``page=N``) needs one of: ``first_key_of_page(offset)``, then a seek
        from that key; or ``rows_from(offset, limit)``, the rows in one statement."""
        size = paging.page_size
        if paging.cursor is not None:
            cursor = decode_cursor(paging.cursor, filters, self.key_types)
            page = cursor.page
            rows, more = self._page(seek, cursor.key, forward=cursor.forward, size=size)
            has_next = more if cursor.forward else True
            has_prev = page > 1
        else:
            page = paging.page
            if page == 1:
                rows, more = self._page(seek, None, forward=True, size=size, inclusive=True)
            elif rows_from is not None:
                rows = rows_from((page - 1) * size, size + 1)
                rows, more = rows[:size], len(rows) > size
            elif first_key_of_page is not None:
                start = first_key_of_page((page - 1) * size)
                if start is None:
                    rows, more = [], False  # beyond the end
                else:
                    rows, more = self._page(seek, start, forward=True, size=size, inclusive=True)
            else:
                raise TypeError(f"{self.path}: a page jump needs first_key_of_page or rows_from")
            has_next, has_prev = more, page > 1

        def url(target: Cursor | None, page_number: int | None = None) -> str:
            params: dict[str, Any] = {**filters, "page_size": size}
            if target is not None:
                params["cursor"] = encode_cursor(target, filters)
            else:
                params["page"] = page_number
            return link(self.path, params)

        next_url = url(Cursor(self._key(rows[-1]), True, page + 1)) if has_next and rows else None
        if not has_prev:
            prev_url = None
        elif rows:
            prev_url = url(Cursor(self._key(rows[0]), False, page - 1))
        else:
            prev_url = url(None, min(page - 1, max(1, -(-total // size))))
        to_item = self.to_item
        body = {
            "data": [to_item(row) for row in rows],
            "pagination": {
                "page": page,
                "page_size": size,
                "total": total,
                "next": next_url,
                "prev": prev_url,
            },
        }
        response = json_response(body)
        header = link_header(next_url, prev_url)
        if header:
            response.headers["Link"] = header
        return with_cache_headers(response, "json")

    def _key(self, row: Sequence[Any]) -> Key:
        return tuple(row[i] for i in self.key_positions)

    @staticmethod
    def _page(
        seek: Seek, key: Key | None, *, forward: bool, size: int, inclusive: bool = False
    ) -> tuple[Sequence[Sequence[Any]], bool]:
        """Up to ``size`` rows from ``key`` on, in key order, and whether there are more."""
        rows = seek(key, forward, inclusive, size + 1)
        more = len(rows) > size
        rows = rows[:size]
        return (rows if forward else rows[::-1]), more


def json_response(body: Any) -> Response:
    """``body`` as Flask's ``jsonify`` writes it with wxhub's settings (compact, ASCII, keys
    in their order, a final newline), without going through the app's JSON provider.

    orjson writes a page of 100 days in a tenth of the time of ``json.dumps``
    (docs/benchmarks.md), and for these bodies the same bytes: its numbers are the shortest
    that round-trip, as Python's ``repr``, and differ only in the exponent of a magnitude
    below 1e-4, which the data's tenths, rounded means and counts never have. It writes
    UTF-8 where ``json.dumps`` escapes to ASCII, so a body with a character beyond ASCII (a
    station's name) takes the standard encoder, keeping the ``\\u`` escapes clients saw.
    """
    encoded = orjson.dumps(body)
    if not encoded.isascii():
        encoded = json.dumps(body, separators=(",", ":")).encode()
    return Response(encoded + b"\n", mimetype="application/json")


def select_seek(
    conn: Connection,
    query: Select[Any] | Sequence[Select[Any]],
    key_columns: Sequence[ColumnElement[Any]],
) -> Seek:
    """A seek of SQLAlchemy queries, for the lists whose filters take many shapes: one
    query, or legs whose rows never overlap (see the module's docstring)."""

    def seek(key: Key | None, forward: bool, inclusive: bool, limit: int) -> list[Row[Any]]:
        def page_of(leg: Select[Any]) -> Select[Any]:
            if key is not None:
                leg = leg.where(
                    beyond(conn, key_columns, key, forward=forward, inclusive=inclusive)
                )
            order = key_columns if forward else [c.desc() for c in key_columns]
            return leg.order_by(*order).limit(limit)

        legs = [query] if isinstance(query, Select) else list(query)
        if len(legs) == 1:
            statement = page_of(legs[0])
        else:
            merged = union_all(*(select(page_of(leg).subquery()) for leg in legs)).subquery()
            names = [merged.c[_name(column)] for column in key_columns]
            statement = (
                select(merged)
                .order_by(*(names if forward else [c.desc() for c in names]))
                .limit(limit)
            )
        return list(conn.execute(statement))

    return seek


def _name(column: ColumnElement[Any]) -> str:
    name = column.key
    if name is None:
        raise TypeError(f"a key column needs a name: {column}")
    return name
