"""What the API refuses and what it tells browsers, before any route runs.

An API on the internet is sent query strings no client of ours would build: megabytes of
station ids, one parameter five times. Each is answered with a problem document naming what
is wrong, before the parameter models or the database see it. Every answer carries headers
that keep a browser from sniffing types or framing it; the documentation page gets a
Content-Security-Policy that allows its own scripts (by hash) and nothing from elsewhere.
Cross-origin reads are closed unless origins are configured (``WXHUB_CORS_ORIGINS``).
"""

from __future__ import annotations

import base64
import hashlib
import re

from flask import Flask, Response, request
from flask_cors import CORS

from wxhub.api.errors import problem
from wxhub.config import Settings

# Every valid request fits: 200 station ids of up to 20 characters, a cursor, dates, paging.
# gunicorn's own request-line limit (limit_request_line, in server.py) sits above this, so
# the client gets this problem document rather than gunicorn's bare 400.
MAX_QUERY_STRING_BYTES = 6144

# For JSON, CSV and problem documents: nothing in them is ever run or framed.
API_CSP = "default-src 'none'; frame-ancestors 'none'"
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
CORS_EXPOSED_HEADERS = ["ETag", "Link", "X-Request-ID", "Retry-After"]
CORS_MAX_AGE_S = 3600


def register(app: Flask, settings: Settings) -> None:
    """Limits on the query string, security headers, and CORS when configured."""

    @app.before_request
    def _refuse_unreasonable_query_strings() -> Response | None:
        if len(request.query_string) > MAX_QUERY_STRING_BYTES:
            return problem(
                414,
                "Query string too long",
                f"the query string is {len(request.query_string)} bytes; at most "
                f"{MAX_QUERY_STRING_BYTES} are accepted (e.g. 200 station ids at once)",
            )
        for name, values in request.args.lists():
            if len(values) > 1:
                return problem(
                    400,
                    "Invalid request",
                    f"{name}: given more than once; give it once "
                    "(several station ids go in one value, separated by commas)",
                    parameter=name,
                )
        return None

    every_answer = [*COMMON_HEADERS.items(), ("Content-Security-Policy", API_CSP)]

    @app.after_request
    def _security_headers(response: Response) -> Response:
        headers = response.headers
        # A page that needs more (the documentation) has set its own; a data answer has none
        # of these yet. One pass over the names: asking werkzeug's Headers for an absent
        # name raises and catches an exception inside it, four times a request.
        present = {name.lower() for name, _ in headers}
        headers.extend(
            [(name, value) for name, value in every_answer if name.lower() not in present]
        )
        return response

    if settings.cors_origins:
        CORS(
            app,
            resources={r"/api/*": {"origins": list(settings.cors_origins)}},
            methods=["GET", "HEAD", "OPTIONS"],
            expose_headers=CORS_EXPOSED_HEADERS,
            max_age=CORS_MAX_AGE_S,
            supports_credentials=False,
        )


def page_csp(html: str) -> str:
    """A Content-Security-Policy for a page of ours: its own files, plus exactly the inline
    scripts and styles it contains (by SHA-256), nothing from another origin."""
    return (
        "default-src 'self'; "
        f"script-src 'self' {_inline_script_hashes(html)}; "
        # Swagger UI styles its elements from its scripts: inline styles are allowed (a
        # hash here would make browsers ignore 'unsafe-inline'); scripts are not.
        "style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; "
        "connect-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _inline_script_hashes(html: str) -> str:
    bodies = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    return " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in bodies
    )
