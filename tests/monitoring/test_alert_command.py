"""`flask appointments alert-sync-failures`: output, exit codes, --company, --verbose,
--dry-run, and the log lines it leaves in the `calcom` logger."""

from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from core.extensions import db
from core.models import AlertNotification, SyncStatus
from tests.monitoring.data import NOW, appointment, company

COMMAND = ["appointments", "alert-sync-failures"]


def _run(runner, *args):
    return runner.invoke(args=COMMAND + list(args))


def test_exit_code_is_0_when_healthy_or_degraded_and_1_when_critical(runner, clock):
    world = company("Salon A")
    result = _run(runner)
    assert result.exit_code == 0, result.output
    assert "Sync health: HEALTHY — All companies (2026-12-07T08:00:00+00:00)" in result.output
    assert "No open alerts." in result.output

    for _ in range(11):
        appointment(world, requested=NOW - timedelta(hours=2))
    result = _run(runner)
    assert result.exit_code == 0, result.output
    assert "Sync health: DEGRADED" in result.output
    assert "WARNING  Salon A: 11 appointments have waited more than 60 min to sync to Cal.com" in result.output

    appointment(world, sync=SyncStatus.FAILED, requested=NOW - timedelta(hours=25))
    result = _run(runner)
    assert result.exit_code == 1, result.output
    assert "Sync health: CRITICAL" in result.output
    assert "CRITICAL Salon A: 1 appointment failed to sync more than 24 h ago and never reached Cal.com" \
        in result.output
    assert "What to do: Cal.com may offer these slots" in result.output


def test_verbose_lists_the_appointments_behind_the_alerts(runner, clock):
    world = company("Salon A")
    row = appointment(world, sync=SyncStatus.FAILED, review=True, attempts=5, error_code="http_422",
                      error_message="event type 1001 has no host\nat all")
    result = _run(runner, "--verbose")
    assert result.exit_code == 1
    line = next(x for x in result.output.splitlines() if x.strip().startswith(f"#{row.id} "))
    local = row.starts_at.astimezone(ZoneInfo("Europe/Berlin"))
    assert line.strip() == (f"#{row.id} · Salon A · Erika Mustermann · {local:%a %d.%m.%Y %H:%M} {local.tzname()} · "
                            "failed/create · attempts 5 · error http_422: event type 1001 has no host at all · "
                            "review: Cal.com refused the booking")
    assert f"#{row.id} ·" not in _run(runner).output  # no breakdown without --verbose


def test_company_option_selects_one_company_and_rejects_unknown_ones(runner, clock):
    a, b = company("Salon A"), company("Werkstatt B")
    appointment(a, sync=SyncStatus.FAILED, review=True)
    appointment(b)

    result = _run(runner, "--company", str(b["company"].id))
    assert result.exit_code == 0, result.output
    assert "Sync health: HEALTHY — Werkstatt B" in result.output
    assert "Salon A" not in result.output

    result = _run(runner, "--company", a["company"].slug)
    assert result.exit_code == 1
    assert "Sync health: CRITICAL — Salon A" in result.output

    for bad in ("999", "no-such-salon", " "):
        result = _run(runner, "--company", bad)
        assert result.exit_code == 2, result.output
        assert "Error: Invalid value for --company" in result.output
    known = f"{a['company'].id} ({a['company'].slug}), {b['company'].id} ({b['company'].slug})"
    assert f"no company '999'; known companies: {known}" in _run(runner, "--company", "999").output
    assert db.session.query(AlertNotification).count() == 1  # only the two real runs wrote (the log channel)


def test_the_run_is_logged_to_the_calcom_logger(runner, clock, caplog):
    world = company("Salon A")
    appointment(world, sync=SyncStatus.FAILED, review=True)
    with caplog.at_level(logging.INFO, logger="calcom"):
        _run(runner)
    lines = [r for r in caplog.records if r.name == "calcom"]
    assert any(r.levelno == logging.ERROR and "sync health critical (All companies): 1 open alert(s)" in r.getMessage()
               for r in lines)
    assert any("alert CRITICAL [slotguard/manual_review/company:" in r.getMessage() for r in lines)


def test_dry_run_sends_nothing_and_changes_nothing(vendors, runner, clock):
    world = company("Salon A")
    appointment(world, sync=SyncStatus.FAILED, review=True)
    result = _run(runner, "--dry-run")
    assert result.exit_code == 1
    for channel in ("log", "slack", "email", "pagerduty"):
        assert f"Dry run: would send to {channel}: CRITICAL Salon A: 1 appointment needs manual review" \
            in result.output
    assert vendors.slack.requests == [] and vendors.pagerduty.requests == [] and vendors.smtp.messages == []
    assert db.session.query(AlertNotification).count() == 0

    _run(runner)  # a real run sends...
    assert len(vendors.slack.requests) == 1
    result = _run(runner, "--dry-run")  # ...and a dry run afterwards knows it
    assert "Dry run: nothing new to send." in result.output
