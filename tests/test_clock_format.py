"""A stored UTC time becomes text for people in one place, `core.clock.format_local`."""

from __future__ import annotations

import pathlib
from datetime import datetime, timezone

import pytest

from core import PROJECT_ROOT
from core.clock import format_local, format_span

UTC = timezone.utc


def test_times_are_said_in_the_zone_with_its_abbreviation_across_dst():
    assert format_local(datetime(2026, 12, 8, 9, 0, tzinfo=UTC), "Europe/Berlin") == "Tue 08.12.2026 10:00 CET"
    assert format_local(datetime(2026, 7, 7, 8, 0, tzinfo=UTC), "Europe/Berlin") == "Tue 07.07.2026 10:00 CEST"
    assert format_local(datetime(2026, 12, 8, 9, 0), "Europe/Berlin", "%H:%M", zone=None) == "10:00"  # naive = UTC
    assert format_local(datetime(2026, 12, 8, 9, 0, tzinfo=UTC), "Europe/Berlin", zone="name") == \
        "Tue 08.12.2026 10:00 (Europe/Berlin)"
    with pytest.raises(ValueError):
        format_local(datetime(2026, 12, 8, 9, 0, tzinfo=UTC), "Europe/Berlin", zone="offset")


def test_spans_repeat_the_date_only_across_days():
    start = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
    assert format_span(start, datetime(2026, 12, 8, 9, 30, tzinfo=UTC), "Europe/Berlin") == \
        "Tue 08.12.2026 10:00–10:30 CET"
    assert format_span(datetime(2026, 12, 6, 8, 0, tzinfo=UTC), datetime(2026, 12, 7, 8, 0, tzinfo=UTC),
                       "Europe/Berlin") == "Sun 06.12.2026 09:00 – Mon 07.12.2026 09:00 CET"


@pytest.mark.parametrize("path", ["dashboard/formatting.py", "monitoring/breakdown.py", "monitoring/notifiers.py",
                                  "monitoring/digest.py", "workers/reconcile.py", "workers/sync_records.py",
                                  "booking/reconcile_webhook.py"])
def test_dashboard_notifiers_digest_and_reasons_format_through_the_one_function(path):
    source = pathlib.Path(PROJECT_ROOT, path).read_text(encoding="utf-8")
    assert "format_local(" in source or "format_span(" in source
    assert "%a %d.%m.%Y %H:%M}" not in source and "tzname()" not in source and "to_local(" not in source
