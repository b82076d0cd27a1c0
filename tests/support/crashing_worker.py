"""A worker that dies (or freezes) at a chosen point of the sync — for the recovery tests only.

`rq worker --worker-class tests.support.crashing_worker.CrashingAppWorker` behaves
exactly like the production `AppWorker`, except in its work horse, at the point
`SLOTGUARD_TEST_CRASH_AT` names:

* `after_create` (default): the Cal.com client's `create_booking` has returned
  Cal.com's 201 (the booking exists), nothing is committed yet — the worst moment
  for exactly-once;
* `after_commit`: `finish_attempt` has committed the attempt's result (synced, or a
  retry with its time), but the job has not scheduled the retry nor told RQ it ended.

What happens there, from `SLOTGUARD_TEST_CRASH`:

* `horse`: the work horse SIGKILLs itself (RQ's worker survives and fails the job);
* `worker`: it SIGKILLs the worker process first, then itself (nothing is left to
  tell RQ; the job stays "started" until its heartbeat deadline passes);
* `stop`: it stops itself (SIGSTOP) and the test, which sees a stopped horse, kills
  the horse or the whole worker from outside (`tests/support/worker_process.py`).

Only this test class patches anything, and only inside the forked horse.
"""

from __future__ import annotations

import os
import signal

from calcom.client import CalcomClient
from workers import sync as sync_module
from workers.app_worker import AppWorker


def _crash() -> None:
    mode = os.environ.get("SLOTGUARD_TEST_CRASH", "horse")
    if mode == "stop":
        os.kill(os.getpid(), signal.SIGSTOP)
        return  # only reached if the test lets it go on (SIGCONT)
    if mode == "worker":
        os.kill(os.getppid(), signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)


class CrashingAppWorker(AppWorker):
    def perform_job(self, job, queue, *args, **kwargs):
        # Runs in the forked work horse: the patch dies with it.
        point = os.environ.get("SLOTGUARD_TEST_CRASH_AT", "after_create")
        if point == "after_create":
            create = CalcomClient.create_booking

            def create_then_die(client, *a, **kw):
                create(client, *a, **kw)  # Cal.com has made the booking and answered 201
                _crash()

            CalcomClient.create_booking = create_then_die
        elif point == "after_commit":
            finish = sync_module.finish_attempt

            def finish_then_die(*a, **kw):
                decision = finish(*a, **kw)  # committed: the appointment's new sync state is written
                _crash()
                return decision

            sync_module.finish_attempt = finish_then_die
        else:
            raise ValueError(f"unknown SLOTGUARD_TEST_CRASH_AT {point!r}")
        return super().perform_job(job, queue, *args, **kwargs)
