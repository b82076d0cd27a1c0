"""Real `rq worker` processes for the reliability tests.

`WorkerProcess` starts `rq worker` (the production `AppWorker` unless told otherwise)
on the sync queue against the test's database, Redis and Cal.com emulator, finds its
work horse (the child RQ forks per job) and kills either with SIGKILL, the way an
out-of-memory killer or a lost machine would. Waiting is polling with a deadline:
these are other processes, not time-dependent logic.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from core import PROJECT_ROOT
from core.queues import SYNC_QUEUE

RQ = os.path.join(os.path.dirname(sys.executable), "rq")
APP_WORKER = "workers.app_worker.AppWorker"
CRASHING_WORKER = "tests.support.crashing_worker.CrashingAppWorker"


def worker_env(app, database_url: str, **extra: str) -> dict[str, str]:
    """The environment a worker process gets: the test's database, Redis and emulator."""
    return dict(os.environ, DATABASE_URL=database_url, REDIS_URL=app.config["REDIS_URL"],
                CALCOM_API_URL=app.config["CALCOM_API_URL"], CALCOM_API_KEY="cal_test_key",
                SECRET_KEY="test-secret-key", PYTHONPATH=PROJECT_ROOT, **extra)


def wait_until(condition, *, timeout: float, what: str, interval: float = 0.05):
    """Poll `condition()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)  # another process is working; nothing here depends on time


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of the live children of `pid`, from /proc (state "T" = stopped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ..."; comm may contain spaces, so split after the last ")".
        fields = stat[stat.rindex(")") + 2:].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and state != "Z":
            found.append((int(entry.name), state))
    return found


class WorkerProcess:
    """One `rq worker` process; use as a context manager so it never outlives the test."""

    def __init__(self, app, database_url: str, log_path: Path, *, worker_class: str = APP_WORKER,
                 burst: bool = True, with_scheduler: bool = False, name: str | None = None, **env: str) -> None:
        args = [RQ, "worker", "--url", app.config["REDIS_URL"], "--worker-class", worker_class]
        if burst:
            args.append("--burst")
        if with_scheduler:
            args.append("--with-scheduler")
        if name:
            args += ["--name", name]
        self.log_path = Path(log_path)
        self._output = open(self.log_path, "w")
        self.process = subprocess.Popen(args + [SYNC_QUEUE], cwd=PROJECT_ROOT,
                                        env=worker_env(app, database_url, **env),
                                        stdout=self._output, stderr=subprocess.STDOUT)
        self._horses_killed: list[int] = []

    @property
    def pid(self) -> int:
        return self.process.pid

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def log(self) -> str:
        if not self._output.closed:
            self._output.flush()
        return self.log_path.read_text()

    def horse(self, *, stopped: bool = False, timeout: float = 60) -> int:
        """The pid of the work horse running a job now (with `stopped`: one that has
        stopped itself at a crash point, see `tests/support/crashing_worker.py`)."""

        def find():
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited ({self.process.returncode}) before a horse "
                                     f"appeared:\n{self.log}")
            for pid, state in _children(self.pid):
                if pid not in self._horses_killed and (not stopped or state == "T"):
                    return pid
            return None

        return wait_until(find, timeout=timeout, what="the worker's work horse")

    def kill_horse(self, pid: int) -> None:
        """SIGKILL the work horse only: RQ's worker sees it die, fails the job and goes on."""
        self._horses_killed.append(pid)
        os.kill(pid, signal.SIGKILL)

    def kill_everything(self, horse: int | None = None) -> None:
        """SIGKILL the worker, then its horse (RQ forks it into its own process group, so
        it would survive its parent): nothing is left to tell RQ the job ended."""
        self.kill()
        if horse is not None:
            self._horses_killed.append(horse)
            try:
                os.kill(horse, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 30) -> int:
        """Warm shutdown (SIGTERM, as a deploy does): RQ finishes the job in hand and stops
        its scheduler process; SIGKILL only if that takes longer than `timeout`."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self.kill()
        return self.process.returncode

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        if not self._output.closed:
            self._output.close()

    def wait(self, timeout: float = 90) -> int:
        """Wait for a `--burst` worker to finish its queue; returns its exit code."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"the worker did not finish within {timeout:.0f} s:\n{self.log}") from None


__all__ = ["APP_WORKER", "CRASHING_WORKER", "WorkerProcess", "wait_until", "worker_env"]
