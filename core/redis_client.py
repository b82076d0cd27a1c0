"""The app's Redis connection: slot holds, RQ queues and the metrics cache share it."""

from __future__ import annotations

import atexit
import os
import time
from typing import Callable

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
        # 10-second silence on the phone. One quick retry rides out a reconnect;
        # after that Redis counts as down for a few seconds (FailFastRetry).
        retry=FailFastRetry(float(app.config.get("REDIS_DOWN_SECONDS", 5.0))),
        health_check_interval=30,
    )


class FailFastRetry(Retry):
    """One quick retry, then Redis counts as down in this process for `down_seconds`:
    every call in that time fails at once with `redis.ConnectionError`.

    A Redis that hangs (stopped, overloaded, cut off by the network) accepts the TCP
    connection and never answers, so each call waits out the socket timeout — and a
    voice request touches Redis five to ten times (slot cache, holds, Cal.com call
    log, sync queue). Without this a caller heard nothing for over a minute. Every
    user of Redis already copes with `ConnectionError` (no hold, cache miss, sync
    left to the sweeper), so failing fast changes what is said only by saying it
    sooner. After `down_seconds` the next call tries Redis again.
    """

    def __init__(self, down_seconds: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(ExponentialWithJitterBackoff(cap=0.1, base=0.01), retries=1)
        self.down_seconds = down_seconds
        self.clock = clock
        self.down_until = 0.0

    def __deepcopy__(self, memo) -> "FailFastRetry":
        # redis-py copies the Retry into every connection; they must share one verdict.
        return self

    def call_with_retry(self, do, fail, is_retryable=None, with_failure_count=False):
        if self.clock() < self.down_until:
            raise redis.ConnectionError("Redis did not answer a moment ago; not waiting for it again yet")
        try:
            return super().call_with_retry(do, fail, is_retryable, with_failure_count)
        except self._supported_errors:
            self.down_until = self.clock() + self.down_seconds
            raise


def get_redis(app: Flask | None = None) -> redis.Redis:
    return (app or current_app).extensions["redis"]
