"""The dashboard's tiles: the htmx poll of the overview (served from the cached
metrics, as every operator's browser does every few minutes), and the metric
computation itself (`collect_sync_metrics`, what the scheduler runs every 5 minutes
and what an empty cache or the refresh button costs)."""

from __future__ import annotations

import time

import redis as redis_lib

from core.extensions import db
from core.models import Role, User
from core.redis_client import get_redis
from monitoring.metrics import collect_sync_metrics, get_sync_metrics

from bench import stats
from bench.databases import make_app, redis_url

TILES_HEADERS = {"HX-Request": "true", "HX-Target": "tiles"}


def _operator() -> int:
    user = User(email="bench-operator@example.com", password_hash="not-used", role=Role.ADMIN)
    db.session.add(user)
    db.session.commit()
    return user.id


def tiles(target, *, requests: int, computations: int) -> dict:
    redis_lib.Redis.from_url(redis_url()).flushdb()
    app = make_app(target)
    computed = []
    with app.app_context():
        db.session.query(User).filter_by(email="bench-operator@example.com").delete()
        user_id = _operator()
        redis = get_redis(app)
        for _ in range(computations):
            started = time.perf_counter()
            collect_sync_metrics(db.session, redis=redis)
            computed.append(time.perf_counter() - started)
            db.session.rollback()
        get_sync_metrics(refresh=True)  # what the scheduler leaves in the cache
        db.session.remove()
        client = app.test_client()
        with client.session_transaction() as session:
            session["_user_id"] = str(user_id)
            session["_fresh"] = True
        samples = []
        for index in range(requests + 10):
            started = time.perf_counter()
            response = client.get("/dashboard/", headers=TILES_HEADERS)
            elapsed = time.perf_counter() - started
            if response.status_code != 200 or b"Sync Health" not in response.data:
                raise RuntimeError(f"tiles fragment: HTTP {response.status_code}")
            if index >= 10:
                samples.append(elapsed)
        db.session.query(User).filter_by(id=user_id).delete()
        db.session.commit()
        db.engine.dispose()
    return {"fragment": stats.summary_ms(samples), "compute": stats.summary_ms(computed)}
