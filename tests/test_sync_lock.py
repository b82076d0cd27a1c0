"""The per-appointment Redis lock that keeps two workers off the same appointment."""

from __future__ import annotations

from rq import Queue
from rq.job import JobStatus

from core.redis_client import get_redis
from workers.sync_lock import SyncLock, lock_key


def make_lock(app, job_id: str, appointment_id: int = 7, ttl: float = 60) -> SyncLock:
    return SyncLock(get_redis(app), appointment_id, job_id, ttl)


def enqueue_job(app, job_id: str, status: JobStatus | None = None):
    job = Queue("calcom-sync", connection=get_redis(app)).enqueue("workers.sync.sync_appointment", 7, "create", 1,
                                                                  job_id=job_id)
    if status is not None:
        job.set_status(status)
    return job


def test_second_worker_is_refused_while_the_first_runs(app):
    enqueue_job(app, "job-a", JobStatus.STARTED)
    first, second = make_lock(app, "job-a"), make_lock(app, "job-b")

    assert first.acquire()
    assert not second.acquire()
    assert second.holder().startswith("job-a|")

    first.release()
    assert second.acquire()


def test_other_appointments_are_not_blocked(app):
    assert make_lock(app, "job-a", appointment_id=1).acquire()
    assert make_lock(app, "job-b", appointment_id=2).acquire()


def test_only_the_holder_releases_or_extends(app):
    enqueue_job(app, "job-a", JobStatus.STARTED)
    first, second = make_lock(app, "job-a"), make_lock(app, "job-b")
    assert first.acquire()

    second.held = True  # pretend: a confused worker that believes it holds the lock
    second.release()
    assert get_redis(app).get(lock_key(7)).decode() == first.value
    assert not second.extend()

    assert first.extend()
    first.release()
    assert get_redis(app).get(lock_key(7)) is None


def test_the_lock_expires_after_its_ttl(app):
    lock = make_lock(app, "job-a", ttl=30)
    assert lock.acquire()
    ttl_ms = get_redis(app).pttl(lock_key(7))
    assert 0 < ttl_ms <= 30_000


def test_a_lock_of_a_job_that_no_longer_runs_is_taken_over_at_once(app):
    # The holder's worker was killed; RQ has since marked its job failed (or abandoned).
    enqueue_job(app, "job-dead", JobStatus.FAILED)
    dead = make_lock(app, "job-dead")
    assert dead.acquire()

    successor = make_lock(app, "job-new")
    assert successor.acquire()
    assert get_redis(app).get(lock_key(7)).decode() == successor.value
    assert not dead.extend()  # the dead holder (were it to wake up) cannot renew it


def test_a_lock_left_by_an_earlier_run_of_the_same_job_is_taken_over(app):
    earlier_run = make_lock(app, "sync-7-v1")
    assert earlier_run.acquire()
    assert make_lock(app, "sync-7-v1").acquire()


def test_a_lock_whose_job_is_gone_from_redis_is_taken_over(app):
    assert make_lock(app, "job-vanished").acquire()
    assert make_lock(app, "job-new").acquire()


def test_the_lock_is_redis_pys_lock_with_the_jobs_token(app):
    """No hand-written lock scripts; the token in Redis names the holding job."""
    import workers.sync_lock as module
    from redis.lock import Lock

    lock = make_lock(app, "job-a", ttl=30)
    assert isinstance(lock._lock, Lock)
    assert not any(name.startswith("_") and isinstance(value, str) and "redis.call" in value
                   for name, value in vars(module).items())
    assert lock.acquire()
    assert get_redis(app).get(lock_key(7)).decode() == lock.value and lock.value.startswith("job-a|")
    get_redis(app).pexpire(lock_key(7), 1000)
    assert lock.extend()
    assert get_redis(app).pttl(lock_key(7)) > 1000  # renewed to the full TTL


def test_a_holder_whose_lock_expired_and_was_retaken_neither_extends_nor_releases_it(app):
    enqueue_job(app, "job-b", JobStatus.STARTED)
    first = make_lock(app, "job-a")
    assert first.acquire()
    get_redis(app).delete(lock_key(7))  # the TTL ran out while job-a was stuck
    second = make_lock(app, "job-b")
    assert second.acquire()
    assert not first.extend()
    first.release()
    assert get_redis(app).get(lock_key(7)).decode() == second.value
