"""A short Redis lock per appointment, so two workers never sync it at once.

Why Redis and not a database row lock: the Cal.com calls take up to tens of seconds,
and a row lock held that long would stall every writer of the appointment (a caller
cancelling on the phone) and, on SQLite, the whole database. So the database is
locked only for the two short transactions around the calls (read and claim the
attempt; write the result, re-checking the version), and this lock spans the calls.
It works the same on SQLite and PostgreSQL.

The value names the RQ job holding it (`<job id>|<random token>`). Only the holder
releases or extends it (compare-and-delete in Lua, like the slot holds). Its TTL is
short and renewed before every Cal.com call, so a worker that dies frees it soon; and
a lock whose holder job is visibly no longer running (RQ marked it failed, abandoned
or finished, or it is the same job being run again after a crash) is taken over at
once instead of waiting for the TTL.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus

KEY_PREFIX = "slotguard:sync-lock:"

# KEYS[1] = lock key, ARGV[1] = our value: delete only if we still hold it.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# ARGV[2] = ttl in ms: renew only if we still hold it.
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
# ARGV[1] = the dead holder's value, ARGV[2] = ours, ARGV[3] = ttl: replace only that holder.
_TAKE_OVER = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1
end
return 0
"""


def lock_key(appointment_id: int) -> str:
    return f"{KEY_PREFIX}{int(appointment_id)}"


@dataclass
class SyncLock:
    connection: redis.Redis
    appointment_id: int
    job_id: str
    ttl_seconds: float

    def __post_init__(self) -> None:
        self.value = f"{self.job_id}|{secrets.token_hex(8)}"
        self.key = lock_key(self.appointment_id)
        self.held = False

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl_seconds * 1000))

    def acquire(self) -> bool:
        """Take the lock; True when we hold it now."""
        if self.connection.set(self.key, self.value, nx=True, px=self._ttl_ms):
            self.held = True
            return True
        holder = self.connection.get(self.key)
        if holder is None:  # released between our SET and GET: try once more
            self.held = bool(self.connection.set(self.key, self.value, nx=True, px=self._ttl_ms))
            return self.held
        holder_value = holder.decode() if isinstance(holder, bytes) else str(holder)
        if self._holder_is_gone(holder_value):
            self.held = bool(
                self.connection.eval(_TAKE_OVER, 1, self.key, holder_value, self.value, self._ttl_ms)
            )
        return self.held

    def holder(self) -> str | None:
        value = self.connection.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def extend(self) -> bool:
        """Renew the TTL before a slow step; False when the lock was lost meanwhile."""
        if not self.held:
            return False
        self.held = bool(self.connection.eval(_EXTEND, 1, self.key, self.value, self._ttl_ms))
        return self.held

    def release(self) -> None:
        if self.held:
            self.connection.eval(_RELEASE, 1, self.key, self.value)
            self.held = False

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
