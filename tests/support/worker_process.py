"""Real `rq worker` processes for the reliability tests.

`WorkerProcess` starts `rq worker` (the forking `AppWorker` unless told otherwise; the
Procfile runs the non-forking `SimpleAppWorker`) on the sync queue against the test's
database, Redis and Cal.com emulator, finds its work horse (the child RQ forks per
job) and kills either with SIGKILL, the way an out-of-memory killer or a lost machine
would. `JobKillers` kills whatever runs each job in turn, for either worker class. Waiting is polling with a deadline:
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
SIMPLE_APP_WORKER = "workers.app_worker.SimpleAppWorker"  # the Procfile's
CRASHING_SIMPLE_WORKER = "tests.support.crashing_worker.CrashingSimpleAppWorker"


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

    def horse(self, *, stopped: bool = False, timeout: float = 90) -> int:
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

    def wait_stopped(self, timeout: float = 90) -> None:
        """Wait until the worker itself has stopped at a crash point (a non-forking
        worker runs the job in its own process)."""

        def stopped():
            if self.process.poll() is not None:
                raise AssertionError(f"the worker exited ({self.process.returncode}) before it stopped:\n{self.log}")
            stat = Path(f"/proc/{self.pid}/stat").read_text()
            return stat[stat.rindex(")") + 2:].split()[0] == "T"

        wait_until(stopped, timeout=timeout, what="the worker to stop at its crash point")

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
        """SIGKILL the worker and whatever it forked (a horse must not outlive a failed test)."""
        if self.process.poll() is None:
            children = [pid for pid, _ in _children(self.pid)]
            self.process.send_signal(signal.SIGKILL)
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
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


class JobKillers:
    """Kill the process running each sync job in turn; call `start_job()` before each job
    and `kill(last=...)` at its crash point.

    Forking (`AppWorker`): one worker runs every job; each job's work horse is killed
    (RQ's worker fails the job and goes on), at the last job the whole worker, so
    nothing is left to tell RQ. Non-forking (`SimpleAppWorker`, the Procfile's): the
    job runs in the worker, so every kill is the whole worker's and every killed job
    stays "started"; a fresh worker process takes the next job.
    """

    def __init__(self, app, database_url: str, tmp_path: Path, *, forking: bool, crashing: bool = False,
                 **env: str) -> None:
        self.forking = forking
        if forking:
            worker_class = CRASHING_WORKER if crashing else APP_WORKER
        else:
            worker_class = CRASHING_SIMPLE_WORKER if crashing else SIMPLE_APP_WORKER
        self._start = lambda n: WorkerProcess(app, database_url, Path(tmp_path) / f"worker-{n}.log",
                                              worker_class=worker_class, **env)
        self.started = 0
        self.worker: WorkerProcess | None = None

    def __enter__(self) -> JobKillers:
        if self.forking:
            self.worker = self._start(0)
        return self

    def __exit__(self, *exc) -> None:
        if self.worker is not None:
            self.worker.stop()

    def start_job(self) -> None:
        """Non-forking: a fresh worker for the next job (the last one was killed)."""
        if not self.forking:
            self.started += 1
            self.worker = self._start(self.started)

    def kill(self, *, last: bool, stopped: bool = False) -> None:
        """Kill what runs the job now (with `stopped`: once it stopped at its crash point)."""
        worker = self.worker
        if not self.forking:
            if stopped:
                worker.wait_stopped()
            worker.kill_everything()
            return
        horse = worker.horse(stopped=stopped)
        if last:
            worker.kill_everything(horse)
        else:
            worker.kill_horse(horse)
