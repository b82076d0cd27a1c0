"""The Cal.com emulator (calcom.emulator) served on a free local port in a thread,
with the world of the benchmark's database and a rate limit out of the way."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

from werkzeug.serving import make_server


@contextmanager
def served_emulator(session, *, latency_ms: int = 0) -> Iterator[tuple[str, object]]:
    """Yield (base URL, Emulator). Hosts and event types come from the database (no
    bookings pre-loaded: Cal.com's calendars start empty)."""
    from calcom.emulator import Emulator
    from calcom.emulator_world import load_world

    faults = {"latency_ms": latency_ms} if latency_ms else None
    emulator = Emulator(seed=9, rate_limit=1_000_000, faults=faults)
    load_world(emulator.state, session, preload_bookings=False)
    session.remove() if hasattr(session, "remove") else session.close()
    server = make_server("127.0.0.1", 0, emulator, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", emulator
    finally:
        emulator.shutdown()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
