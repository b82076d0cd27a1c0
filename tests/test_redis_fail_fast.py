"""A Redis that hangs costs one timeout, not one per call.

Regression: with Redis stopped (SIGSTOP: the TCP connection is accepted, no answer
ever comes) every Redis call of a voice request waited out its own socket timeout,
and callers heard nothing for over a minute (tests/reliability/test_redis_outage.py,
`frozen`). Now the first failure makes the process treat Redis as down for
REDIS_DOWN_SECONDS: later calls fail at once without even connecting, and after that
time Redis is tried again.
"""

from __future__ import annotations

import socket
import threading

import pytest
import redis
from flask import Flask

from core import redis_client


class SilentServer:
    """Accepts TCP connections and never says a word (like a stopped Redis)."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_redis():
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_after_one_timeout_redis_counts_as_down_until_its_time_is_up(silent_redis):
    app = Flask("fail-fast")
    app.config.update(REDIS_URL=f"redis://127.0.0.1:{silent_redis.port}/0", REDIS_SOCKET_TIMEOUT=0.2,
                      REDIS_DOWN_SECONDS=5)
    redis_client.init_app(app)
    client = redis_client.get_redis(app)
    retry = client.get_connection_kwargs()["retry"]
    retry.clock = clock = Clock()

    with pytest.raises(redis.RedisError):
        client.get("slotguard:anything")  # waits: the one timeout this outage costs
    tried = len(silent_redis.accepted)
    assert tried >= 1

    # The slot cache, the holds, the sync queue … all fail at once now, without connecting.
    for _ in range(3):
        with pytest.raises(redis.ConnectionError, match="not waiting for it again"):
            client.mget(["a", "b"])
        with pytest.raises(redis.ConnectionError):
            client.pipeline(transaction=False).hmget("k", ["f"]).execute()
    assert len(silent_redis.accepted) == tried

    clock.now += 5  # REDIS_DOWN_SECONDS later Redis gets another chance
    with pytest.raises(redis.RedisError):
        client.get("slotguard:anything")
    assert len(silent_redis.accepted) > tried


def test_a_healthy_redis_is_not_affected(redis_url):
    app = Flask("fail-fast-healthy")
    app.config.update(REDIS_URL=redis_url)
    redis_client.init_app(app)
    client = redis_client.get_redis(app)
    key = "slotguard:test:fail-fast"
    client.set(key, "1", px=10_000)
    assert client.get(key) == b"1"
    client.delete(key)
