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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from flask import Response, jsonify
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


@dataclass(frozen=True)
class Listing:
    """How one resource is listed."""

    path: str
    key_columns: Sequence[ColumnElement[Any]]
    key_types: Sequence[type]
    to_item: Callable[[Row[Any]], dict[str, Any]]

    def respond(
        self,
        conn: Connection,
        query: Select[Any] | Sequence[Select[Any]],
        filters: Mapping[str, Any],
        paging: PageRequest,
        *,
        total: int,
        first_key_of_page: Callable[[int], Key | None],
    ) -> Response:
        """The page asked for, as JSON with pagination links. ``query`` is one query, or
        legs whose rows never overlap (see the module's docstring)."""
        size = paging.page_size
        if paging.cursor is not None:
            cursor = decode_cursor(paging.cursor, filters, self.key_types)
            page = cursor.page
            rows, more = self._seek(
                conn, query, cursor.key, forward=cursor.forward, size=size, inclusive=False
            )
            has_next = more if cursor.forward else True
            has_prev = page > 1
        else:
            page = paging.page
            start = None if page == 1 else first_key_of_page((page - 1) * size)
            if page > 1 and start is None:
                rows, more = [], False  # beyond the end
            else:
                rows, more = self._seek(conn, query, start, forward=True, size=size, inclusive=True)
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
        body = {
            "data": [self.to_item(row) for row in rows],
            "pagination": {
                "page": page,
                "page_size": size,
                "total": total,
                "next": next_url,
                "prev": prev_url,
            },
        }
        response = jsonify(body)
        header = link_header(next_url, prev_url)
        if header:
            response.headers["Link"] = header
        return with_cache_headers(response, "json")

    def _key(self, row: Row[Any]) -> Key:
        # By name: a merged page's rows come from a union, not from the key's own table.
        return tuple(row._mapping[_name(column)] for column in self.key_columns)

    def _seek(
        self,
        conn: Connection,
        query: Select[Any] | Sequence[Select[Any]],
        key: Key | None,
        *,
        forward: bool,
        size: int,
        inclusive: bool,
    ) -> tuple[list[Row[Any]], bool]:
        """Up to ``size`` rows from ``key`` on, and whether there are more beyond them."""

        def page_of(leg: Select[Any]) -> Select[Any]:
            if key is not None:
                leg = leg.where(
                    beyond(conn, self.key_columns, key, forward=forward, inclusive=inclusive)
                )
            order = self.key_columns if forward else [c.desc() for c in self.key_columns]
            return leg.order_by(*order).limit(size + 1)

        legs = [query] if isinstance(query, Select) else list(query)
        if len(legs) == 1:
            statement = page_of(legs[0])
        else:
            merged = union_all(*(select(page_of(leg).subquery()) for leg in legs)).subquery()
            names = [merged.c[_name(column)] for column in self.key_columns]
            statement = (
                select(merged)
                .order_by(*(names if forward else [c.desc() for c in names]))
                .limit(size + 1)
            )
        rows = list(conn.execute(statement))
        more = len(rows) > size
        rows = rows[:size]
        return (rows if forward else rows[::-1]), more


def _name(column: ColumnElement[Any]) -> str:
    name = column.key
    if name is None:
        raise TypeError(f"a key column needs a name: {column}")
    return name
