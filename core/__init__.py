"""Slotguard's core: the app factory, configuration, models and the booking guard."""

from __future__ import annotations

import os
from typing import Any, Mapping

from dotenv import load_dotenv
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.utils import import_string

from core import database, logs, redis_client
from core.config import Config, production_problems
from core.extensions import csrf, db, htmx, login_manager, migrate

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(config: Mapping[str, Any] | object | None = None) -> Flask:
    """Build a Slotguard app.

    `config` overrides what the environment says: a mapping (tests pass one) or an
    object with upper-case attributes.
    """
    load_dotenv(os.path.join(PROJECT_ROOT, ".env"), override=False)
    app = Flask(
        "slotguard",
        root_path=PROJECT_ROOT,
        instance_path=os.path.join(PROJECT_ROOT, "instance"),
        instance_relative_config=True,
        template_folder="templates",
        static_folder="static",
    )
    settings = Config()
    app.config.from_object(settings)
    if config is not None:
        app.config.from_mapping(config if isinstance(config, Mapping) else _upper_attributes(config))

    _apply_defaults(app)
    _configure_logging(app)
    _trust_proxies(app)

    db.init_app(app)
    database.configure_engine(app)
    migrate.init_app(app, db, directory=os.path.join(PROJECT_ROOT, "migrations"))
    htmx.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    redis_client.init_app(app)

    for room in app.config["ROOMS"]:
        import_string(f"{room}:init_app")(app)

    return app


def _upper_attributes(obj: object) -> dict[str, Any]:
    return {key: getattr(obj, key) for key in dir(obj) if key.isupper()}


def _apply_defaults(app: Flask) -> None:
    """Fill what depends on the instance folder, then refuse unsafe production settings."""
    os.makedirs(app.instance_path, exist_ok=True)
    if not app.config.get("SQLALCHEMY_DATABASE_URI"):
        app.config["SQLALCHEMY_DATABASE_URI"] = "sqlite:///" + os.path.join(app.instance_path, "slotguard.db")
    if app.config["ENV"] == "production":
        problems = production_problems(app.config)
        if problems:
            raise RuntimeError("SLOTGUARD_ENV=production refuses to start: " + "; ".join(problems))
    elif not app.config.get("SECRET_KEY"):
        # Random per run: sessions end with the process. `make run` exports one key
        # for all its processes; production must set SECRET_KEY (checked above).
        app.config["SECRET_KEY"] = os.urandom(32).hex()


def _trust_proxies(app: Flask) -> None:
    """Believe X-Forwarded-* from exactly TRUSTED_PROXY_COUNT proxies (0: none)."""
    count = int(app.config.get("TRUSTED_PROXY_COUNT") or 0)
    if count < 0:
        raise RuntimeError("TRUSTED_PROXY_COUNT must not be negative")
    if count:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count)


def _configure_logging(app: Flask) -> None:
    """One masked handler on the root logger, JSON or text (`core.logs`)."""
    logs.configure(app.config.get("LOG_FORMAT", "text"), app.config.get("LOG_LEVEL", "INFO"))
