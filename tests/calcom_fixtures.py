"""Fixtures for talking to a Cal.com stand-in over real HTTP (a pytest plugin).

Loaded by `tests/conftest.py` (`pytest_plugins`), so every test module can use:

* `serve_wsgi(wsgi_app)` – context manager serving any WSGI app on a free local port
  in a thread (werkzeug `make_server`), yielding its base URL.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

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
