"""Liveness and readiness for the load balancer."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify
from sqlalchemy import text

from core.extensions import csrf, db
from core.redis_client import get_redis

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and answering; says nothing about its dependencies."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """Ready to serve: the database and Redis both answer. 503 names what is down."""
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    down = [name for name, ok in checks.items() if not ok]
    body = {"status": "ok" if not down else "unavailable", "checks": {k: "ok" if v else "down" for k, v in checks.items()}}
    if down:
        body["down"] = down
    return jsonify(body), 503 if down else 200


def _database_ok() -> bool:
    try:
        db.session.execute(text("SELECT 1"))
        return True
    except Exception:
        db.session.rollback()
        return False


def _redis_ok() -> bool:
    try:
        return bool(get_redis().ping())
    except Exception:
        return False


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)
