"""A share of Cal.com's rate limit, enforced across every process by one Redis bucket.

Cal.com allows 120 requests per minute per API key, and the voice agent (callers
waiting) and the sync workers need most of it. Background work that may take its
time — drift reconciliation — takes a token from a shared bucket before each
request, so together all its processes never use more than `share` of the limit:

    budget = RateBudget.for_share(redis, "reconcile", per_minute=120, share_percent=25)
    budget.take()          # waits (with `sleep`) until a request may go out

The bucket holds at most `burst` tokens and refills at `(allowed - burst) / 60` per
second, so in *any* 60-second window at most `burst + (allowed - burst) = allowed`
requests pass — a plain bucket of `allowed` tokens would let twice that through in
the first minute. Taking is one Lua script (atomic in Redis, so processes never
over-spend together); time comes from `core.clock` (`utcnow`, `sleep`), so under a
frozen test clock waiting moves the clock instead of sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from core import clock
from core.clock import utcnow

KEY_PREFIX = "slotguard:ratebudget:"

# KEYS[1] bucket hash. ARGV: now (ms), capacity, refill per ms, ttl (ms).
# Returns 0 when a token was taken, else the milliseconds until one will be there.
_TAKE = """
local now, capacity, rate, ttl = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = capacity, now end
if now > at then tokens = math.min(capacity, tokens + (now - at) * rate); at = now end
if tokens >= 1 then
  redis.call('HSET', KEYS[1], 'tokens', tokens - 1, 'at', at)
  redis.call('PEXPIRE', KEYS[1], ttl)
  return 0
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', at)
redis.call('PEXPIRE', KEYS[1], ttl)
return math.ceil((1 - tokens) / rate)
"""


@dataclass(frozen=True)
class BudgetSettings:
    allowed_per_minute: int
    burst: int

    @property
    def refill_per_ms(self) -> float:
        return (self.allowed_per_minute - self.burst) / 60_000


def budget_settings(per_minute: int, share_percent: int) -> BudgetSettings:
    """The bucket for `share_percent` % of `per_minute` (at least one request a minute)."""
    if per_minute < 1:
        raise ValueError("CALCOM_RATE_LIMIT_PER_MINUTE must be at least 1")
    if not 1 <= share_percent <= 100:
        raise ValueError("RECONCILE_RATE_SHARE_PERCENT must be between 1 and 100")
    allowed = max(2, math.floor(per_minute * share_percent / 100))
    burst = max(1, allowed // 10)
    return BudgetSettings(allowed_per_minute=allowed, burst=burst)


class RateBudget:
    def __init__(self, redis, name: str, settings: BudgetSettings, *,
                 sleep: Callable[[float], None] = clock.sleep, max_wait_seconds: float = 600.0) -> None:
        self.redis = redis
        self.key = KEY_PREFIX + name
        self.settings = settings
        self.sleep = sleep
        self.max_wait_seconds = max_wait_seconds
        self.taken = 0
        self.waited_seconds = 0.0
        self._take = redis.register_script(_TAKE)

    @classmethod
    def for_share(cls, redis, name: str, *, per_minute: int, share_percent: int, **kwargs) -> RateBudget:
        return cls(redis, name, budget_settings(per_minute, share_percent), **kwargs)

    def try_take(self) -> float:
        """Take a token now: 0.0 when taken, else the seconds until one is due."""
        now_ms = int(utcnow().timestamp() * 1000)
        wait_ms = int(self._take(keys=[self.key], args=[now_ms, self.settings.burst,
                                                        repr(self.settings.refill_per_ms), 120_000]))
        if wait_ms == 0:
            self.taken += 1
        return wait_ms / 1000

    def take(self) -> None:
        """Wait until a request may go out (all processes together stay in budget)."""
        waited = 0.0
        while True:
            wait = self.try_take()
            if wait == 0:
                return
            if waited + wait > self.max_wait_seconds:
                raise TimeoutError(f"no Cal.com request budget for {self.max_wait_seconds:.0f} s")
            self.sleep(wait)
            waited += wait
            self.waited_seconds += wait


__all__ = ["BudgetSettings", "RateBudget", "budget_settings"]
