"""Fixtures for talking to a Cal.com stand-in over real HTTP (a pytest plugin).

Loaded by `tests/conftest.py` (`pytest_plugins`), so every test module can use:

* `serve_wsgi(wsgi_app)` – context manager serving any WSGI app on a free local port
  in a thread (werkzeug `make_server`), yielding its base URL;
* fixture `calcom_emulator` – a Cal.com emulator on a free port, with the app under
  test pointed at it (an `EmulatorHandle`: `.url`, `.state`, `.emulator`,
  `.set_faults()`, `.load_world(session)`, `.send_webhooks_to()`, `.control()`…);
* fixture `live_slotguard` – the Slotguard app itself served over HTTP, so the
  emulator can deliver webhooks to `live_slotguard + "/webhooks/calcom"`.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import pytest
from werkzeug.serving import make_server


@contextmanager
def serve_wsgi(wsgi_app, *, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `wsgi_app` on a free port until the block ends; yields "http://host:port".

    Threaded, so a request that hangs (a simulated timeout) does not block others.
    """
    server = make_server(host, 0, wsgi_app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- the Cal.com emulator ---------------------------------------------------------------


class EmulatorHandle:
    """A served emulator: its URL, its objects, and shortcuts tests need.

    `state` is the `CalcomState` (add hosts/event types, inspect bookings directly);
    `control(method, path, **kw)` calls the HTTP control API like a developer would.
    """

    def __init__(self, emulator, url: str) -> None:
        import requests

        self.emulator = emulator
        self.state = emulator.state
        self.url = url
        self._http = requests.Session()

    def control(self, method: str, path: str, **kwargs):
        return self._http.request(method, f"{self.url}/_emulator{path}", timeout=10, **kwargs)

    def set_faults(self, settings) -> None:
        self.emulator.set_faults(settings)

    def clear_faults(self) -> None:
        self.emulator.clear_faults()

    def load_world(self, session, *, preload_bookings: bool = True):
        """Hosts, event types (and synced bookings) from Slotguard's database."""
        from calcom.emulator_world import load_world

        return load_world(self.state, session, preload_bookings=preload_bookings)

    def add_host_and_event_type(self, *, host_id=101, event_type_id=1001, length=30, hours=None,
                                tz="Europe/Berlin", hosts=None, **event_type_fields):
        """A quick world: hosts working `hours` (default Mon–Sat 09:00–18:00) and one event type."""
        from calcom.emulator_state import EventType, Host

        hours = hours or {str(d): [["09:00", "18:00"]] for d in range(1, 7)}
        for hid in hosts or [host_id]:
            self.state.add_host(Host(id=hid, name=f"Host {hid}", email=f"host{hid}@example.com",
                                     username=f"host-{hid}", time_zone=tz, working_hours=hours))
        return self.state.add_event_type(EventType(
            id=event_type_id, slug=f"event-{event_type_id}", title=f"Event {event_type_id}", length_minutes=length,
            host_ids=tuple(hosts or [host_id]), **event_type_fields))

    def send_webhooks_to(self, url: str, secret: str | None) -> None:
        self.emulator.webhooks.configure(url, secret)

    def wait_for_webhooks(self, timeout: float = 10.0) -> None:
        assert self.emulator.webhooks.wait(timeout), "the emulator's webhook deliveries did not finish"

    @property
    def deliveries(self) -> list[dict]:
        return list(self.emulator.webhooks.deliveries)


@pytest.fixture
def calcom_emulator(request, app_config):
    """A Cal.com emulator served on a free port for this test.

    The Slotguard app under test (`app`) is pointed at it: `CALCOM_API_URL` is set in
    `app_config` (and in `app.config` when the test also uses `app`), so
    `calcom.client.get_client()` talks to the emulator. The emulator's clock is
    `core.clock.utcnow`, so the `clock` fixture freezes it too. Webhooks are off until
    `send_webhooks_to(url, secret)`; faults are off until `set_faults(...)`.
    """
    from calcom.emulator import Emulator

    emulator = Emulator(seed=1234)
    with serve_wsgi(emulator) as url:
        app_config["CALCOM_API_URL"] = url
        if "app" in request.fixturenames:
            request.getfixturevalue("app").config["CALCOM_API_URL"] = url
        try:
            yield EmulatorHandle(emulator, url)
        finally:
            emulator.shutdown()


@pytest.fixture
def live_slotguard(app):
    """The Slotguard app served over HTTP on a free port (e.g. for emulator webhooks)."""
    with serve_wsgi(app) as url:
        yield url
