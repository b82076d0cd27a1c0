"""Where the browser loads htmx and Chart.js from: the CDN (pinned, with Subresource
Integrity hashes) or the vendored copies in `static/vendor/` (`ASSETS_FROM=local`,
the default in tests and for offline installs).

The vendored files are the `dist/` files of the npm packages of the same versions
(`npm pack htmx.org@2.0.11`, `npm pack chart.js@4.6.1`); the integrity hashes are
sha384 of those exact bytes, which is what jsDelivr serves for these URLs. A test
checks that the vendored files still match the hashes.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, url_for
from markupsafe import Markup, escape


@dataclass(frozen=True)
class Script:
    name: str
    version: str
    vendored: str  # path under static/
    cdn_url: str
    integrity: str


SCRIPTS = {
    "htmx": Script(
        name="htmx",
        version="2.0.11",
        vendored="vendor/htmx-2.0.11.min.js",
        cdn_url="https://cdn.jsdelivr.net/npm/htmx.org@2.0.11/dist/htmx.min.js",
        integrity="sha384-2OatzQy1H+Zd/IIrjr1TcuDGqLXeHhbooAyJY1KdQMKnr4LZ22k31GBLdYKHmVjg",
    ),
    "chart.js": Script(
        name="chart.js",
        version="4.6.1",
        vendored="vendor/chart-4.6.1.umd.min.js",
        cdn_url="https://cdn.jsdelivr.net/npm/chart.js@4.6.1/dist/chart.umd.min.js",
        integrity="sha384-Emf5ZVIUiarAdhkgtqK+5/Z5qIvM6QoVrS+qAVtfyZVuD5lIHrac0me485+Antp0",
    ),
}

ASSET_SOURCES = ("cdn", "local")


def script_tag(name: str) -> Markup:
    """A deferred `<script>` for one library, from where `ASSETS_FROM` says."""
    script = SCRIPTS[name]
    if current_app.config.get("ASSETS_FROM", "cdn") == "local":
        src = url_for("static", filename=script.vendored)
        return Markup(f'<script src="{escape(src)}" defer></script>')
    return Markup(
        f'<script src="{escape(script.cdn_url)}" integrity="{script.integrity}" '
        f'crossorigin="anonymous" referrerpolicy="no-referrer" defer></script>'
    )


def init_app(app: Flask) -> None:
    source = app.config.get("ASSETS_FROM", "cdn")
    if source not in ASSET_SOURCES:
        raise RuntimeError(f"ASSETS_FROM must be one of {', '.join(ASSET_SOURCES)}, got {source!r}")
    app.jinja_env.globals["script_tag"] = script_tag
