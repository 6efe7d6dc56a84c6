"""CSV answers: every matching row, streamed in constant memory, without pagination.

For people who load the data into a spreadsheet or a notebook: ``Accept: text/csv`` or
``format=csv`` on a list. The rows come from a server-side cursor (MySQL) or SQLite's lazy
cursor a batch at a time and leave as they are written, so a 1.7M-row export holds one
batch in memory, not the table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from flask import Response, request, stream_with_context

from wxhub.api.caching import with_cache_headers
from wxhub.api.db import engine
from wxhub.api.reads import Compiled, stream

CSV_MIMETYPE = "text/csv"
BATCH_ROWS = 2000


def wants_csv(format_parameter: str | None) -> bool:
    """``format`` decides; without it, the Accept header does (JSON unless CSV is preferred)."""
    if format_parameter is not None:
        return format_parameter == "csv"
    best = request.accept_mimetypes.best_match(["application/json", CSV_MIMETYPE])
    return best == CSV_MIMETYPE


def stream_csv(
    query: Compiled,
    params: Mapping[str, Any],
    header: Sequence[str],
    to_cells: Callable[[Sequence[Any]], Sequence[Any]],
    filename: str,
) -> Response:
    """A streamed CSV response of every row of ``query`` with ``params``.

    ``query`` is compiled by the route from the same filter conditions as its JSON pages
    (see :mod:`wxhub.api.reads`), so one place turns a request's filters into SQL.
    """

    def generate() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        # Its own connection: the request's one is returned to the pool when the view ends,
        # while this generator is still being read by the client.
        with engine().connect() as conn:
            for batch in stream(conn, query, params, BATCH_ROWS):
                writer.writerows(to_cells(row) for row in batch)
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
        yield buffer.getvalue()

    response = Response(stream_with_context(generate()), mimetype=CSV_MIMETYPE)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return with_cache_headers(response, "csv")
