"""The queues page: RQ counts, live workers, the schedule — read without side effects."""

from __future__ import annotations

import re
import time

import pytest
from rq import Queue, Worker
from rq.job import Job
from rq.registry import FailedJobRegistry, StartedJobRegistry
from rq_scheduler import Scheduler

from core.queues import DEFAULT_QUEUE, SYNC_QUEUE, enqueue_sync
from core.redis_client import get_redis
from core.models import Role
from tests.dashboard_support import HTMX, make_user, sign_in, squash, text_of
from workers.schedule import register_schedule, schedule_from_config

# rq-scheduler's cron() calls crontab in a way crontab announces it will change.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning:rq_scheduler.*")


def redis_state(r) -> dict:
    """Every key of the test database with its type and content."""
    state = {}
    for key in sorted(r.scan_iter("*")):
        kind = r.type(key).decode()
        if kind == "string":
            value = r.get(key)
        elif kind == "list":
            value = tuple(r.lrange(key, 0, -1))
        elif kind == "set":
            value = frozenset(r.smembers(key))
        elif kind == "zset":
            value = tuple(r.zrange(key, 0, -1, withscores=True))
        elif kind == "hash":
            value = frozenset(r.hgetall(key).items())
        else:
            value = kind
        state[key] = (kind, value)
    return state


@pytest.fixture
def busy_redis(app):
    """Queues with waiting, failed and (expired) started jobs, a live and a dead worker,
    and the real schedule with one entry whose job data vanished."""
    r = get_redis()
    for appointment_id in (1, 2, 3):
        enqueue_sync(appointment_id, "create", 1)
    sync = Queue(SYNC_QUEUE, connection=r)
    failed = sync.enqueue("workers.sync.sync_appointment", 9, "create", 1, job_id="sync-9-v1")
    sync.remove(failed)
    FailedJobRegistry(queue=sync).add(failed, ttl=3600, exc_string="Traceback: Cal.com 503")
    stuck = sync.enqueue("workers.sync.sync_appointment", 8, "create", 1, job_id="sync-8-v1")
    sync.remove(stuck)
    # Expired long ago: StartedJobRegistry.cleanup() would move it to the failed registry.
    r.zadd(StartedJobRegistry(queue=sync).key, {stuck.id: time.time() - 3600})
    worker = Worker([sync, Queue(DEFAULT_QUEUE, connection=r)], connection=r, name="web-1.4242")
    worker.register_birth()
    r.sadd("rq:workers", "rq:worker:gone.1")  # a worker that died without unregistering
    # The real schedule (monitoring room's workers.schedule), as the scheduler registers it.
    register_schedule(Scheduler(queue_name=DEFAULT_QUEUE, connection=r), schedule_from_config(app.config))
    r.zadd(Scheduler.scheduled_jobs_key, {"orphan-job": time.time() + 60})
    return r


def test_queues_page_shows_counts_workers_and_schedule(app, client, busy_redis):
    sign_in(client, make_user(Role.VIEWER))
    # Every registered cron job plus the orphan entry the fixture adds.
    scheduled = len(schedule_from_config(app.config)) + 1
    html = text_of(client.get("/dashboard/queues"))
    sync_row = squash(re.search(rf'<tr data-queue="{SYNC_QUEUE}">.*?</tr>', html, re.S).group(0))
    # queue, waiting, running, scheduled, deferred, failed, finished
    assert sync_row == "calcom-sync 3 1 0 0 1 failed 0"
    assert re.search(r'data-testid="failed-total">1<', html)
    assert re.search(r'data-testid="workers-alive">1<', html)
    assert "web-1.4242" in html and "gone.1" not in html
    assert re.search(rf'data-testid="scheduled-total">{scheduled}<', html)
    page = squash(html)
    for description in ("refresh the sync metrics cache", "check sync health and notify",
                        "re-enqueue stale pending syncs", "send the daily sync digest"):
        assert description in page
    assert "cron */5 * * * *" in page and "(job data expired)" in page


def test_viewing_the_queues_changes_nothing_in_redis(client, busy_redis):
    sign_in(client, make_user(Role.VIEWER))
    before = redis_state(busy_redis)
    for headers in ({}, {**HTMX, "HX-Target": "queues"}):
        assert client.get("/dashboard/queues", headers=headers).status_code == 200
    after = redis_state(busy_redis)
    # Nothing moved: the expired started job is still "started", the dead worker still
    # registered, the orphan schedule entry still there.
    assert before == after


def test_queues_fragment_polls_itself(app, client, busy_redis):
    app.config["DASHBOARD_POLL_SECONDS"] = 30
    sign_in(client, make_user(Role.VIEWER))
    response = client.get("/dashboard/queues", headers={**HTMX, "HX-Target": "queues"})
    body = text_of(response)
    assert body.lstrip().startswith('<section id="queues"') and "<html" not in body
    assert 'hx-trigger="every 30s"' in body and "HX-Request" in response.headers["Vary"]


def test_empty_redis_says_what_is_missing(client, app):
    sign_in(client, make_user(Role.VIEWER))
    page = squash(text_of(client.get("/dashboard/queues")))
    assert "No worker is running" in page and "Nothing scheduled" in page
    assert "calcom-sync 0 0 0 0 0 0" in page and "default 0 0 0 0 0 0" in page


def test_job_data_is_fetched_without_deleting_missing_entries(app, busy_redis):
    from dashboard.queue_snapshot import scheduled_jobs

    jobs, total = scheduled_jobs(busy_redis)
    expected = len(schedule_from_config(app.config)) + 1  # the cron jobs and the orphan
    assert total == expected and len(jobs) == expected
    assert Job.fetch_many(["orphan-job"], connection=busy_redis) == [None]
    assert busy_redis.zscore(Scheduler.scheduled_jobs_key, "orphan-job") is not None
