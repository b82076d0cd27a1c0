"""Slotguard served by gunicorn, as in production (`Procfile`: `web`), for tests that
must go through a real WSGI server: several worker processes, each with threads, so
concurrent callers really race each other across processes and connections.

    with gunicorn_slotguard(env, log_path) as url:   # "http://127.0.0.1:<port>"
        requests.post(url + "/retell/functions/check_availability", ...)

gunicorn binds port 0 and the URL is read from its "Listening at:" line, so no
port is guessed. The server runs with the project's own `gunicorn.conf.py`.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from core import PROJECT_ROOT

GUNICORN = os.path.join(os.path.dirname(sys.executable), "gunicorn")
LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


def server_env(*, database_url: str, redis_url: str, calcom_url: str, retell_key: str,
               workers: int = 2, threads: int = 8, **settings: str) -> dict[str, str]:
    """The environment of a gunicorn-served Slotguard: only what the test chooses, on
    top of this process's PATH and the like (never the caller's DATABASE_URL/REDIS_URL)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "FEATURE_"))}
    env.update(
        DATABASE_URL=database_url, REDIS_URL=redis_url, CALCOM_API_URL=calcom_url, CALCOM_API_KEY="cal_test_key",
        RETELL_API_KEY=retell_key, SECRET_KEY="test-secret-key", SLOTGUARD_ENV="development", LOG_FORMAT="text",
        HOST="127.0.0.1", PORT="0", WEB_CONCURRENCY=str(workers), WEB_THREADS=str(threads),
        GUNICORN_ACCESS_LOG="", PYTHONPATH=PROJECT_ROOT,
    )
    env.update({name: str(value) for name, value in settings.items()})
    return env


@contextmanager
def gunicorn_slotguard(env: dict[str, str], log_path: Path, *, timeout: float = 60.0) -> Iterator[str]:
    """Start gunicorn (`wsgi:app`), wait until every worker answers /healthz, yield its URL."""
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [GUNICORN, "--config", "gunicorn.conf.py", "wsgi:app"], cwd=PROJECT_ROOT, env=env,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        url = _wait_until_serving(process, log_path, timeout)
        yield url
    finally:
        _stop(process)


def _wait_until_serving(process: subprocess.Popen, log_path: Path, timeout: float) -> str:
    """Poll the log for the bound address and then /healthz (waiting on a real process)."""
    deadline = time.monotonic() + timeout
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log_path.read_text()[-4000:]}")
        if url is None:
            found = LISTENING.search(log_path.read_text())
            url = found.group(1) if found else None
        if url is not None:
            try:
                if requests.get(url + "/healthz", timeout=5).status_code == 200:
                    return url
            except requests.RequestException:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn did not start within {timeout} s:\n{log_path.read_text()[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (gunicorn's graceful stop), SIGKILL to the group if it hangs."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


__all__ = ["gunicorn_slotguard", "server_env"]
