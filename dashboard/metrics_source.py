"""Where the dashboard gets its sync metrics: the monitoring room's Redis-cached
`get_sync_metrics` (computed every 5 minutes by the scheduler; computed on the spot
when the cache is empty or an operator asks for a refresh)."""

from __future__ import annotations

from typing import Any

from monitoring.metrics import get_sync_metrics


def current_metrics(refresh: bool = False) -> dict[str, Any]:
    return get_sync_metrics(refresh=refresh)
