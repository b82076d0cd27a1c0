"""Short history of the sync pipeline's vital signs, and where they are heading.

Every scheduled metrics refresh (every 5 minutes) writes one sample per scope —
the failure rate of the last hour and the pending backlog — to a Redis sorted set
scored by time, keeping one trend window (an hour by default). A least-squares line
through the window tells whether a value is climbing fast enough to cross its
critical threshold within the horizon: a warning before the page, not after.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterable, Mapping

log = logging.getLogger("calcom")

KEY_PREFIX = "slotguard:monitoring:trend:"


@dataclass(frozen=True)
class Sample:
    at: float  # unix seconds
    failure_rate: float | None  # None when too few attempts to mean anything
    pending: int


def key_for(scope: str) -> str:
    return KEY_PREFIX + scope


def record_samples(redis, samples: Mapping[str, Sample], *, window: timedelta) -> None:
    """Append one sample per scope and drop what fell out of the window, in one round trip."""
    pipe = redis.pipeline(transaction=False)
    for scope, sample in samples.items():
        key = key_for(scope)
        member = json.dumps({"t": sample.at, "f": sample.failure_rate, "p": sample.pending}, separators=(",", ":"))
        # One sample per instant: a second refresh at the same moment replaces the first.
        pipe.zremrangebyscore(key, sample.at, sample.at)
        pipe.zadd(key, {member: sample.at})
        pipe.zremrangebyscore(key, "-inf", f"({sample.at - window.total_seconds()}")
        pipe.expire(key, int(window.total_seconds() * 2))
    pipe.execute()


def load_history(redis, scopes: Iterable[str], *, now: datetime, window: timedelta) -> dict[str, list[Sample]]:
    """The samples of each scope inside the window ending at `now`, oldest first."""
    scopes = list(scopes)
    end = now.timestamp()
    pipe = redis.pipeline(transaction=False)
    for scope in scopes:
        pipe.zrangebyscore(key_for(scope), end - window.total_seconds(), end)
    history: dict[str, list[Sample]] = {}
    for scope, members in zip(scopes, pipe.execute()):
        samples = []
        for member in members:
            try:
                data = json.loads(member)
                samples.append(Sample(at=float(data["t"]), failure_rate=data["f"], pending=int(data["p"])))
            except (TypeError, ValueError, KeyError):
                continue
        history[scope] = samples
    return history


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (unix seconds, value) points, in value units per hour."""
    n = len(points)
    if n < 2:
        return None
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return None
    slope_per_second = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread
    return slope_per_second * 3600


@dataclass(frozen=True)
class Projection:
    current: float
    slope_per_hour: float
    threshold: float
    minutes_to_threshold: float


def project_crossing(
    points: list[tuple[float, float]], *, threshold: float, horizon: timedelta, min_samples: int
) -> Projection | None:
    """A projection when the value, now below `threshold`, rises to it within `horizon`.

    `points` are (unix seconds, value), oldest first; the last one is "now".
    """
    if len(points) < min_samples:
        return None
    slope = slope_per_hour(points)
    current = points[-1][1]
    if slope is None or slope <= 0 or current >= threshold:
        return None
    hours_to_threshold = (threshold - current) / slope
    if hours_to_threshold * 3600 > horizon.total_seconds():
        return None
    return Projection(current=current, slope_per_hour=slope, threshold=threshold,
                      minutes_to_threshold=hours_to_threshold * 60)


def series(history: list[Sample], current: Sample) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """The failure-rate and backlog point series of a scope, ending with `current`."""
    samples = [s for s in history if s.at < current.at] + [current]
    # Without a current failure rate (too few attempts lately) there is nothing to project from.
    failure = [(s.at, s.failure_rate) for s in samples if s.failure_rate is not None] if current.failure_rate is not None else []
    backlog = [(s.at, float(s.pending)) for s in samples]
    return failure, backlog
