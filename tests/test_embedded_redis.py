"""`python -m core.embedded_redis -- COMMAND`: how `make run` gives its processes a Redis."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wrapper_runs_the_command_with_a_private_server_and_no_warning():
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    ping = "import os, redis; print(redis.Redis.from_url(os.environ['REDIS_URL']).ping())"
    result = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-m", "core.embedded_redis", "--", sys.executable, "-c", ping],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"
    assert "Warning" not in result.stderr  # runpy used to warn: core imported the module first
