"""The app's Redis connection: slot holds, RQ queues and the metrics cache share it."""

from __future__ import annotations

import atexit
import os

import redis
from flask import Flask, current_app
from redis.backoff import ExponentialWithJitterBackoff
from redis.retry import Retry


def init_app(app: Flask) -> None:
    """Connect to `REDIS_URL`, or start an embedded server when none is configured."""
    url = app.config.get("REDIS_URL")
    if not url:
        # Imported here: `python -m core.embedded_redis` (make run) would otherwise find
        # the module already imported through `core` and warn.
        from core import embedded_redis

        data_dir = os.path.join(app.instance_path, "valkey")
        server = embedded_redis.start_server(data_dir=data_dir)
        atexit.register(server.stop)
        app.extensions["embedded_redis"] = server
        url = embedded_redis.server_url(server)
        app.config["REDIS_URL"] = url
        app.logger.warning("REDIS_URL is not set: started an embedded server at %s", url)
    app.extensions["redis"] = redis.Redis.from_url(
        url,
        # A caller is waiting on the phone: fail fast when Redis is down, the
        # database guard still protects bookings.
        socket_connect_timeout=float(app.config.get("REDIS_CONNECT_TIMEOUT", 0.5)),
        socket_timeout=float(app.config.get("REDIS_SOCKET_TIMEOUT", 2.0)),
        # redis-py retries 10 times by default, which turns an outage into a
        # 10-second silence on the phone. One quick retry rides out a reconnect.
        retry=Retry(ExponentialWithJitterBackoff(cap=0.1, base=0.01), retries=1),
        health_check_interval=30,
    )


def get_redis(app: Flask | None = None) -> redis.Redis:
    return (app or current_app).extensions["redis"]
