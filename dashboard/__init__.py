"""The operators' dashboard: login, live sync-health tiles, drill-down lists,
appointment detail with retry/resolve, trends, queues and user management.

Server-rendered Jinja + htmx (contact.app style): every page is a full template that
`include`s its fragments, and an htmx request gets the fragment alone.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("dashboard", __name__, url_prefix="/dashboard")


def init_app(app: Flask) -> None:
    """Register the blueprint, the login machinery and the template helpers."""
    from dashboard import access, assets, formatting

    # Importing the route modules attaches their views to `bp`.
    from dashboard import routes_admin, routes_auth, routes_pages  # noqa: F401

    access.init_app(app)
    assets.init_app(app)
    formatting.init_app(app)
    app.register_blueprint(bp)
