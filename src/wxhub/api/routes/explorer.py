"""``GET /``: the station explorer, a page that charts the API's own answers.

The page is static: it never touches the database, so it loads even when the database is
down and then says so from the API's 503. Everything it needs (its script, its styles and
the vendored chart library, uPlot) is served from the package, so it works offline, and no
script or style is inline, so it runs under ``Content-Security-Policy: default-src 'self'``.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, abort, current_app, render_template, send_from_directory

ASSETS_DIR = Path(__file__).resolve().parent.parent / "explorer"
STATIC_DIR = ASSETS_DIR / "static"

# Only what the page may load: the strictest policy under which it still works.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; "
    "object-src 'none'"
)
# Explicit types rather than the platform's mimetypes tables, which differ between systems
# (application/javascript or text/javascript): with nosniff, a wrong type blocks the script.
ASSET_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}

bp = Blueprint("explorer", __name__, template_folder=str(ASSETS_DIR / "templates"))


@bp.get("/")
def page() -> Response:
    """The explorer page; links to the API docs only when the app serves them."""
    docs = bool(current_app.extensions["wxhub.settings"].api_docs)
    response = Response(render_template("explorer.html", api_docs=docs), mimetype="text/html")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/explorer/<path:filename>")
def asset(filename: str) -> Response:
    """A file of the page: revalidated on every load (a cheap 304), so an upgrade of wxhub
    never leaves a browser with a stale script."""
    mimetype = ASSET_TYPES.get(Path(filename).suffix)
    if mimetype is None:
        abort(404)
    # send_from_directory refuses paths that leave STATIC_DIR.
    response = send_from_directory(STATIC_DIR, filename, mimetype=mimetype, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.after_request
def _no_sniffing(response: Response) -> Response:
    """Browsers must take the declared types: a mistyped file is refused, not guessed at."""
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response
