"""A worker that dies right after Cal.com answered a create — for the recovery tests only.

`rq worker --worker-class tests.support.crashing_worker.CrashingAppWorker` behaves
exactly like the production `AppWorker`, except that in the work horse the Cal.com
client's `create_booking` returns Cal.com's 201 and then the process is killed with
SIGKILL before the job can commit anything: the worst moment for exactly-once.

`SLOTGUARD_TEST_CRASH=horse` kills the work horse (RQ's worker survives and fails the
job at once); `SLOTGUARD_TEST_CRASH=worker` kills the worker process first and then
the horse (nothing is left to tell RQ; the job stays "started" until its heartbeat
deadline passes).
"""

from __future__ import annotations

import os
import signal

from calcom.client import CalcomClient
from workers.app_worker import AppWorker


class CrashingAppWorker(AppWorker):
    def perform_job(self, job, queue, *args, **kwargs):
        # Runs in the forked work horse: the patch dies with it.
        mode = os.environ.get("SLOTGUARD_TEST_CRASH", "horse")
        create = CalcomClient.create_booking

        def create_then_die(client, *a, **kw):
            create(client, *a, **kw)  # Cal.com has made the booking and answered 201
            if mode == "worker":
                os.kill(os.getppid(), signal.SIGKILL)
            os.kill(os.getpid(), signal.SIGKILL)

        CalcomClient.create_booking = create_then_die
        return super().perform_job(job, queue, *args, **kwargs)
