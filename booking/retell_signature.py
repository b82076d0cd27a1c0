"""Verify `X-Retell-Signature` exactly as the official retell-sdk does.

The header is `v=<unix ms>,d=<hex>` where `<hex>` is the lowercase hex HMAC-SHA256 of
`raw_body + str(ms)` keyed with the Retell API key (retell-sdk 6.2.13,
`retell/lib/webhook_auth.py`). A timestamp more than five minutes away from now (in
either direction, inclusive at exactly five minutes) is refused, so a captured request
cannot be replayed later. The digest is compared in constant time.

The MAC is computed over the raw bytes as received; re-serialised JSON would not match.
"now" comes from `core.clock.utcnow()` so tests can freeze it.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from core.clock import utcnow

HEADER = "X-Retell-Signature"
# Same pattern as the SDK (`re.fullmatch`): no spaces, `v` before `d`, lowercase hex.
SIGNATURE_PATTERN = re.compile(r"v=(\d+),d=([0-9a-f]{64})")
TOLERANCE_MS = 5 * 60 * 1000


def sign(raw_body: bytes, api_key: str, timestamp_ms: int) -> str:
    """The header value Retell would send for this body at `timestamp_ms`."""
    digest = hmac.new(api_key.encode(), raw_body + str(timestamp_ms).encode(), hashlib.sha256).hexdigest()
    return f"v={timestamp_ms},d={digest}"


def now_ms() -> int:
    return int(utcnow().timestamp() * 1000)


def verify(raw_body: bytes, api_key: str, header: str | None, *, at_ms: int | None = None) -> bool:
    """True when `header` is a valid, fresh signature of `raw_body` under `api_key`."""
    if not header or not api_key:
        return False
    match = SIGNATURE_PATTERN.fullmatch(header)
    if match is None:
        return False
    stamp = int(match.group(1))
    current = now_ms() if at_ms is None else at_ms
    if abs(current - stamp) > TOLERANCE_MS:
        return False
    expected = hmac.new(api_key.encode(), raw_body + match.group(1).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, match.group(2))


__all__ = ["HEADER", "SIGNATURE_PATTERN", "TOLERANCE_MS", "sign", "verify", "now_ms"]
