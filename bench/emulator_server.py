"""The Cal.com emulator (calcom.emulator) in a process of its own on a free local
port, with the world of the benchmark's database (hosts and event types; Cal.com's
calendars start empty) and its rate limit out of the way. A process of its own, so
that the emulator's work never competes with the measured code for one interpreter."""

from __future__ import annotations

import multiprocessing
from contextlib import contextmanager
from typing import Iterator


def _serve(target, latency_ms: int, pipe) -> None:
    import logging

    from werkzeug.serving import make_server

    from calcom.emulator import Emulator
    from calcom.emulator_world import load_world
    from core.extensions import db

    from bench.databases import make_app

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = make_app(target)
    faults = {"latency_ms": latency_ms} if latency_ms else None
    emulator = Emulator(seed=9, rate_limit=10_000_000, faults=faults)
    with app.app_context():
        load_world(emulator.state, db.session, preload_bookings=False)
        db.session.remove()
        db.engine.dispose()
    server = make_server("127.0.0.1", 0, emulator, threaded=True)
    server.daemon_threads = True
    pipe.send(server.server_port)
    server.serve_forever(poll_interval=0.1)


@contextmanager
def emulator_process(target, *, latency_ms: int = 0) -> Iterator[str]:
    """Yield the emulator's base URL while it runs; stopped afterwards."""
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    process = context.Process(target=_serve, args=(target, latency_ms, child), daemon=True)
    process.start()
    try:
        if not parent.poll(120):
            raise RuntimeError("the Cal.com emulator did not start")
        yield f"http://127.0.0.1:{parent.recv()}"
    finally:
        process.terminate()
        process.join(10)
