"""The station explorer as the app serves it: the page, its assets, their weight and the
security headers that let it run under a strict Content-Security-Policy.

What the page does in a browser is tested in tests/browser/.
"""

from __future__ import annotations

import re
import tomllib
from fnmatch import fnmatch
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import REPO_ROOT
from wxhub.api.app import create_app
from wxhub.api.routes.explorer import ASSETS_DIR, STATIC_DIR
from wxhub.config import load_settings

PAGE_BUDGET_BYTES = 300_000
# A database nobody answers on: the page must not need one.
NO_DATABASE = {"DB_HOST": "127.0.0.1", "DB_PORT": "1", "DB_PASSWORD": "pw"}


def _app(**env: str) -> Flask:
    return create_app(load_settings({**NO_DATABASE, **env}))


@pytest.fixture
def client() -> FlaskClient:
    return _app().test_client()


class _PageParts(HTMLParser):
    """What the page loads, and anything inline that a strict CSP would block."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.stylesheets: list[str] = []
        self.icons: list[str] = []
        self.links: list[str] = []
        self.inline: list[str] = []
        self.labels_for: set[str] = set()
        self.controls: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = dict(attrs)
        for name in attr:
            if name == "style" or name.startswith("on"):
                self.inline.append(f"<{tag} {name}=...>")
        if tag == "script":
            self._in_script = True
            if attr.get("src"):
                self.scripts.append(attr["src"] or "")
        elif tag == "style":
            self.inline.append("<style>")
        elif tag == "link" and attr.get("rel") == "stylesheet":
            self.stylesheets.append(attr.get("href") or "")
        elif tag == "link" and attr.get("rel") == "icon":
            self.icons.append(attr.get("href") or "")
        elif tag == "a":
            self.links.append(attr.get("href") or "")
        elif tag == "label" and attr.get("for"):
            self.labels_for.add(attr["for"] or "")
        elif tag in ("input", "select", "textarea", "button") and attr.get("id"):
            self.controls.append(attr["id"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append("<script> with a body")


def _parts(client: FlaskClient) -> _PageParts:
    parser = _PageParts()
    parser.feed(client.get("/").get_data(as_text=True))
    return parser


def test_the_page_is_served_at_the_root_as_html(client):
    response = client.get("/")

    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert "<h1>wxhub station explorer</h1>" in response.get_data(as_text=True)


def test_the_page_loads_even_when_the_database_does_not_answer(client):
    # NO_DATABASE points at a closed port: the page must still come, and say so from the API.
    assert client.get("/").status_code == 200
    assert client.get("/api/stations").status_code == 503


def test_the_page_carries_a_strict_content_security_policy_and_nosniff(client):
    response = client.get("/")

    policy = response.headers["Content-Security-Policy"]
    directives = {part.strip().split(" ", 1)[0]: part.strip() for part in policy.split(";")}
    assert directives["default-src"] == "default-src 'self'"
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy
    assert directives["frame-ancestors"] == "frame-ancestors 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_the_page_has_no_inline_script_style_or_event_handler(client):
    assert _parts(client).inline == []


def test_every_script_and_stylesheet_is_served_by_the_app_itself(client):
    parts = _parts(client)

    assert len(parts.scripts) == 2
    assert len(parts.stylesheets) == 2
    for url in parts.scripts + parts.stylesheets + parts.icons + parts.links:
        assert url.startswith(("/", "#")), f"{url} is not served by the app"
        assert not url.startswith("//"), f"{url} leaves the app"


@pytest.mark.parametrize(
    ("path", "mimetype"),
    [
        ("/explorer/explorer.js", "text/javascript"),
        ("/explorer/explorer.css", "text/css"),
        ("/explorer/vendor/uPlot.iife.min.js", "text/javascript"),
        ("/explorer/vendor/uPlot.min.css", "text/css"),
        ("/explorer/vendor/uPlot.LICENSE.txt", "text/plain"),
        ("/explorer/favicon.svg", "image/svg+xml"),
    ],
)
def test_assets_are_served_with_their_type_and_nosniff(client, path, mimetype):
    response = client.get(path)

    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers.get("ETag")


def test_an_unchanged_asset_is_revalidated_with_a_304(client):
    etag = client.get("/explorer/explorer.js").headers["ETag"]

    assert client.get("/explorer/explorer.js", headers={"If-None-Match": etag}).status_code == 304


@pytest.mark.parametrize(
    "path",
    [
        "/explorer/no-such-file.js",
        "/explorer/../routes/explorer.py",
        "/explorer/%2e%2e/templates/explorer.html",
        "/explorer/vendor",
    ],
)
def test_anything_but_a_page_asset_is_a_404_problem(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_the_page_with_everything_it_loads_weighs_under_300_kb(client):
    parts = _parts(client)
    sizes = {"/": len(client.get("/").get_data())}
    for url in parts.scripts + parts.stylesheets + parts.icons:
        sizes[url] = len(client.get(url).get_data())

    total = sum(sizes.values())
    assert total < PAGE_BUDGET_BYTES, sizes


def test_every_static_file_is_one_the_page_uses_or_the_licence():
    # A forgotten file would ship in the wheel without counting against the budget.
    files = {path.relative_to(STATIC_DIR).as_posix() for path in STATIC_DIR.rglob("*.*")}

    assert files == {
        "explorer.js",
        "explorer.css",
        "favicon.svg",
        "vendor/uPlot.iife.min.js",
        "vendor/uPlot.min.css",
        "vendor/uPlot.LICENSE.txt",
        "vendor/uPlot.VERSION.txt",
    }


def test_the_vendored_chart_library_keeps_its_licence_and_pinned_version():
    licence = (STATIC_DIR / "vendor" / "uPlot.LICENSE.txt").read_text()
    version = (STATIC_DIR / "vendor" / "uPlot.VERSION.txt").read_text()
    pinned = REPO_ROOT / "tools" / "uplot" / "package.json"

    assert "MIT License" in licence
    assert "Leon Sorokin" in licence
    match = re.search(r'"uplot": "([0-9.]+)"', pinned.read_text())
    assert match is not None
    assert version.startswith(f"uplot {match.group(1)} ")


def test_the_page_links_to_the_api_docs_and_the_csv_export(client):
    links = _parts(client).links

    assert "/api/docs" in links
    assert any(link.startswith("/api/weather/stats?") and "format=csv" in link for link in links)


def test_the_page_does_not_link_to_docs_the_app_does_not_serve():
    links = _parts(_app(WXHUB_API_DOCS="off").test_client()).links

    assert "/api/docs" not in links


def test_every_form_control_has_a_label(client):
    parts = _parts(client)

    assert parts.controls
    assert set(parts.controls) <= parts.labels_for


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _palette() -> dict[str, str]:
    css = (STATIC_DIR / "explorer.css").read_text()
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})\s*;", css))


@pytest.mark.parametrize(
    ("foreground", "background", "minimum"),
    [
        # Text: WCAG AA 1.4.3, 4.5:1.
        ("text", "bg", 4.5),
        ("muted", "bg", 4.5),
        ("link", "bg", 4.5),
        ("error-text", "error-bg", 4.5),
        # Chart lines, bar outlines, map dots and the focus ring: WCAG AA 1.4.11, 3:1.
        ("max-temp", "bg", 3.0),
        ("min-temp", "bg", 3.0),
        ("precip", "bg", 3.0),
        ("focus", "bg", 3.0),
        ("map-dot", "bg", 3.0),
        ("map-chosen", "bg", 3.0),
    ],
)
def test_the_palette_meets_wcag_aa_contrast(foreground, background, minimum):
    palette = _palette()

    assert _contrast(palette[foreground], palette[background]) >= minimum


def test_every_explorer_file_is_listed_in_the_wheels_package_data():
    # A file the globs miss works from a checkout and is a 404 once installed from the wheel.
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    globs = pyproject["tool"]["setuptools"]["package-data"]["wxhub.api"]
    package = STATIC_DIR.parent.parent
    files = [path.relative_to(package).as_posix() for path in ASSETS_DIR.rglob("*.*")]

    assert files
    for name in files:
        # setuptools' globs do not cross directories; fnmatch's would.
        folder = name.rsplit("/", 1)[0]
        assert any(
            fnmatch(name, pattern) and pattern.rsplit("/", 1)[0] == folder for pattern in globs
        ), name
