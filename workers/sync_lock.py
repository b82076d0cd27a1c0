"""A short Redis lock per appointment, so two workers never sync it at once.

Why Redis and not a database row lock: the Cal.com calls take up to tens of seconds,
and a row lock held that long would stall every writer of the appointment (a caller
cancelling on the phone) and, on SQLite, the whole database. So the database is
locked only for the two short transactions around the calls (read and claim the
attempt; write the result, re-checking the version), and this lock spans the calls.
It works the same on SQLite and PostgreSQL.

The lock is redis-py's `Lock` (SET NX PX with a token; release and renewal compare
the token in redis-py's own Lua scripts), non-blocking and not thread-local: the
job that takes it releases it. Our one addition: the token names the RQ job holding
it (`<job id>|<random>`), so a lock whose holder job is visibly no longer running
(RQ marked it failed, abandoned or finished, or it is the same job being run again
after a crash) is taken over at once instead of waiting for the TTL. Its TTL is
short and renewed before every Cal.com call, so a worker that dies frees it soon.
"""

from __future__ import annotations

import secrets

import redis
from redis.exceptions import LockError
from redis.lock import Lock
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

KEY_PREFIX = "slotguard:sync-lock:"


def lock_key(appointment_id: int) -> str:
    return f"{KEY_PREFIX}{int(appointment_id)}"


class SyncLock:
    """The lock on one appointment, taken on behalf of one RQ job (`job_id`, or "-"
    for an inline run, which only the TTL frees)."""

    def __init__(self, connection: redis.Redis, appointment_id: int, job_id: str, ttl_seconds: float) -> None:
        self.connection = connection
        self.appointment_id = appointment_id
        self.job_id = job_id
        self.value = f"{job_id}|{secrets.token_hex(8)}"
        self.key = lock_key(appointment_id)
        self.held = False
        self._lock = self._lock_with_token(self.value, max(0.001, float(ttl_seconds)))

    def _lock_with_token(self, token: str, timeout: float | None = None) -> Lock:
        lock = Lock(self.connection, self.key, timeout=timeout, blocking=False, thread_local=False)
        lock.local.token = token.encode()
        return lock

    def acquire(self) -> bool:
        """Take the lock; True when we hold it now."""
        self.held = self._lock.acquire(token=self.value)
        if self.held:
            return True
        holder = self.holder()
        if holder is None:  # released between our SET and GET: try once more
            self.held = self._lock.acquire(token=self.value)
        elif self._holder_is_gone(holder):
            try:  # compare-and-delete with the dead holder's token: a live newcomer is never removed
                self._lock_with_token(holder).release()
            except LockError:
                pass  # someone else took it over (or it expired) meanwhile
            self.held = self._lock.acquire(token=self.value)
        return self.held

    def holder(self) -> str | None:
        value = self.connection.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def extend(self) -> bool:
        """Renew the TTL before a slow step; False when the lock was lost meanwhile."""
        if not self.held:
            return False
        try:
            self._lock.local.token = self.value.encode()
            self.held = bool(self._lock.reacquire())
        except LockError:
            self.held = False
        return self.held

    def release(self) -> None:
        """Let go, if we still hold it (someone else's lock is never deleted)."""
        if not self.held:
            return
        self.held = False
        try:
            self._lock.local.token = self.value.encode()
            self._lock.release()
        except LockError:
            pass  # expired and perhaps taken by another worker: nothing of ours to release

    def _holder_is_gone(self, holder_value: str) -> bool:
        """True when the job named in the lock is certainly not running any more.

        A live holder is always a STARTED job: RQ sets that status before the job
        function runs and changes it when the job ends, fails, is found abandoned
        or its work horse dies. The same job id as ours means an earlier run of this
        very job that did not finish (RQ runs a job id once at a time).
        """
        holder_job_id = holder_value.split("|", 1)[0]
        if not holder_job_id or holder_job_id == "-":
            return False  # not taken by an RQ job (inline run): wait for the TTL
        if holder_job_id == self.job_id:
            return True
        try:
            status = Job.fetch(holder_job_id, connection=self.connection).get_status(refresh=False)
        except NoSuchJobError:
            return True
        return status != JobStatus.STARTED


__all__ = ["SyncLock", "lock_key"]
