"""When to try a failed sync again: exponential backoff with full jitter.

The n-th retry (n = 0 for the first) waits a random time between 0 and
`min(cap, base * 2**n)` seconds ("full jitter", as in the AWS Architecture Blog's
"Exponential Backoff And Jitter"): retries of many appointments that failed together
spread out instead of hitting Cal.com again in one burst. A 429 waits at least as
long as Cal.com's rate-limit headers say.

Pure functions: the random source is passed in, so tests use a seeded one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class BackoffPolicy:
    """How many attempts a sync gets and how the waits between them grow."""

    max_attempts: int = 5
    base_seconds: float = 120
    cap_seconds: float = 960

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("SYNC_MAX_ATTEMPTS must be at least 1")
        if self.base_seconds <= 0 or self.cap_seconds < self.base_seconds:
            raise ValueError("SYNC_BACKOFF_BASE_SECONDS must be > 0 and SYNC_BACKOFF_CAP_SECONDS >= it")

    @classmethod
    def from_config(cls, config) -> BackoffPolicy:
        return cls(
            max_attempts=int(config.get("SYNC_MAX_ATTEMPTS", 5)),
            base_seconds=float(config.get("SYNC_BACKOFF_BASE_SECONDS", 120)),
            cap_seconds=float(config.get("SYNC_BACKOFF_CAP_SECONDS", 960)),
        )

    def ceiling(self, failed_attempts: int) -> float:
        """The longest wait after `failed_attempts` failures (1 = after the first try)."""
        if failed_attempts < 1:
            raise ValueError("a wait is only needed after at least one failed attempt")
        exponent = min(failed_attempts - 1, 32)  # 2**32 * base is far beyond any cap
        return min(self.cap_seconds, self.base_seconds * 2**exponent)

    def worst_case_span(self) -> float:
        """Seconds from the first failure to the last attempt if every wait is the longest."""
        return sum(self.ceiling(n) for n in range(1, self.max_attempts))


def retry_delay(
    policy: BackoffPolicy,
    failed_attempts: int,
    rng: random.Random,
    *,
    retry_after: float | None = None,
) -> float:
    """Seconds to wait before the next attempt, after `failed_attempts` failures.

    Full jitter: uniform in [0, ceiling]. `retry_after` (from a 429's headers) is a
    floor: we never come back before Cal.com said we may.
    """
    delay = rng.uniform(0, policy.ceiling(failed_attempts))
    if retry_after is not None and retry_after > delay:
        delay = float(retry_after)
    return delay


__all__ = ["BackoffPolicy", "retry_delay"]
