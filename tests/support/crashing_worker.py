"""A worker that dies (or freezes) at a chosen point of the sync — for the recovery tests only.

`rq worker --worker-class tests.support.crashing_worker.CrashingSimpleAppWorker` behaves
exactly like the production `SimpleAppWorker` (`CrashingAppWorker`: like the forking
`AppWorker`, in its work horse), except at the point `SLOTGUARD_TEST_CRASH_AT` names:

* `after_create` (default): the Cal.com client's `create_booking` has returned
  Cal.com's 201 (the booking exists), nothing is committed yet — the worst moment
  for exactly-once;
* `after_commit`: `finish_attempt` has committed the attempt's result (synced, or a
  retry with its time), but the job has not scheduled the retry nor told RQ it ended.

What happens there, from `SLOTGUARD_TEST_CRASH`:

* `horse`: the process running the job SIGKILLs itself (a forking worker survives
  and fails the job; a non-forking worker is gone with it);
* `worker`: a work horse SIGKILLs its worker process first, then itself (nothing is
  left to tell RQ; the job stays "started" until its heartbeat deadline passes); in a
  non-forking worker the same as `horse`;
* `stop`: it stops itself (SIGSTOP) and the test, which sees it stopped, kills the
  horse or the whole worker from outside (`tests/support/worker_process.py`).

Only these test classes patch anything, and only in the process that dies.
"""

from __future__ import annotations

import os
import signal

from calcom.client import CalcomClient
from workers import sync as sync_module
from workers.app_worker import AppWorker, SimpleAppWorker


def _crash(in_horse: bool) -> None:
    mode = os.environ.get("SLOTGUARD_TEST_CRASH", "horse")
    if mode == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
        return  # only reached if the test lets it go on (SIGCONT)
    if mode == "worker" and in_horse:  # a non-forking worker's parent is the test itself
        os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


class CrashPointMixin:
    def perform_job(self, job, queue, *args, **kwargs):
        # Runs in the process that dies (the forked horse, or the non-forking worker):
        # the patch dies with it.
        in_horse = self.is_horse
        point = os.environ.get("SLOTGUARD_TEST_CRASH_AT", "after_create")
        if point == "after_create":
            create = CalcomClient.create_booking

            def create_then_die(client, *a, **kw):
                create(client, *a, **kw)  # Cal.com has made the booking and answered 201
                _crash(in_horse)

            CalcomClient.create_booking = create_then_die
        elif point == "after_commit":
            finish = sync_module.finish_attempt

            def finish_then_die(*a, **kw):
                decision = finish(*a, **kw)  # committed: the appointment's new sync state is written
                _crash(in_horse)
                return decision

            sync_module.finish_attempt = finish_then_die
        else:
            raise ValueError(f"unknown SLOTGUARD_TEST_CRASH_AT {point!r}")
        return super().perform_job(job, queue, *args, **kwargs)


class CrashingAppWorker(CrashPointMixin, AppWorker):
    """The forking worker; the crash point is in its work horse."""


class CrashingSimpleAppWorker(CrashPointMixin, SimpleAppWorker):
    """The production (non-forking) worker; the crash point is in the worker itself."""
