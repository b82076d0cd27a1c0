"""Rate limit for the login form, kept in Redis so every web process shares it.

Two counters of failed attempts, each living for the lockout window from the first
failure: one per (client address, email) — guessing one account's password — and
one per client address — trying many accounts. While a counter is at its limit the
login is refused without checking the password, until the key expires. A successful
login clears the (address, email) counter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import redis

PREFIX = "slotguard:dashboard:login-failures"


@dataclass(frozen=True)
class LoginLimits:
    per_account: int
    per_address: int
    window_seconds: int


def _keys(address: str, email: str) -> tuple[str, str]:
    # The email is hashed so that Redis holds no list of login names.
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"{PREFIX}:{address}:{digest}", f"{PREFIX}:{address}"


def seconds_locked(r: redis.Redis, address: str, email: str, limits: LoginLimits) -> int:
    """0 when a login may be tried now, else how many seconds the lockout still lasts."""
    account_key, address_key = _keys(address, email)
    with r.pipeline() as pipe:
        pipe.get(account_key).ttl(account_key).get(address_key).ttl(address_key)
        account_count, account_ttl, address_count, address_ttl = pipe.execute()
    waits = []
    if int(account_count or 0) >= limits.per_account:
        waits.append(account_ttl)
    if int(address_count or 0) >= limits.per_address:
        waits.append(address_ttl)
    # A key without expiry (ttl -1) cannot come from record_failure; treat it as a full window.
    return max((w if w > 0 else limits.window_seconds) for w in waits) if waits else 0


def record_failure(r: redis.Redis, address: str, email: str, limits: LoginLimits) -> None:
    """Count a failed attempt; the window starts with the first failure (NX expiry)."""
    account_key, address_key = _keys(address, email)
    with r.pipeline() as pipe:
        pipe.incr(account_key).expire(account_key, limits.window_seconds, nx=True)
        pipe.incr(address_key).expire(address_key, limits.window_seconds, nx=True)
        pipe.execute()


def record_success(r: redis.Redis, address: str, email: str) -> None:
    account_key, _ = _keys(address, email)
    r.delete(account_key)
