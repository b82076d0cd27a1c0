"""The trend alert: a least-squares line through the last hour of samples, written by
the scheduled refresh, warns when a critical level is less than an hour away."""

from __future__ import annotations

from datetime import timedelta

from core.extensions import db
from core.models import SyncOutcome, SyncStatus
from monitoring.metrics import collect_sync_metrics
from monitoring.trends import project_crossing, slope_per_hour
from tests.monitoring.data import appointment, attempt, company

FIVE_MIN = timedelta(minutes=5)
HOUR = timedelta(hours=1)


def test_least_squares_slope_and_projection():
    line = [(i * 300.0, 10 + 5 * i) for i in range(5)]  # +5 every 5 min = +60 per hour
    assert slope_per_hour(line) == 60
    crossing = project_crossing(line, threshold=40, horizon=HOUR, min_samples=4)  # now 30
    assert crossing is not None and round(crossing.minutes_to_threshold) == 10
    assert project_crossing(line, threshold=100, horizon=HOUR, min_samples=4) is None  # 70 min away
    assert project_crossing(line, threshold=40, horizon=HOUR, min_samples=6) is None  # too few samples
    assert project_crossing([(t, 20.0) for t, _ in line], threshold=30, horizon=HOUR, min_samples=4) is None
    assert project_crossing([(t, v) for (t, _), (_, v) in zip(line, line[::-1])], threshold=12,
                            horizon=HOUR, min_samples=4) is None  # falling
    assert project_crossing(line, threshold=30, horizon=HOUR, min_samples=4) is None  # already there
    # Noise around a rising line still reads as rising.
    noisy = [(i * 300.0, v) for i, v in enumerate([10, 18, 17, 26, 27])]
    assert project_crossing(noisy, threshold=40, horizon=HOUR, min_samples=4) is not None


def _refresh(**settings):
    return collect_sync_metrics(db.session, settings=settings, record_trend=True)


def _backlog_alert(metrics):
    return next((a for a in metrics["overall"]["alerts"] if a["kind"] == "pending_backlog"), None)


def test_rising_backlog_fires_a_warning_before_it_turns_critical(app, clock):
    world = company()
    seen = []
    for _ in range(4):
        for _ in range(5):
            appointment(world)
        seen.append(_backlog_alert(_refresh(pending_backlog_critical=30)))
        clock.advance(FIVE_MIN)
    assert seen[:3] == [None, None, None]  # fewer than 4 samples: no trend yet
    warning = seen[3]
    assert warning["severity"] == "warning"
    assert warning["message"] == ("The pending backlog is rising by about 60 per hour (now 20); at this pace it "
                                  "reaches the critical 30 in about 10 min")
    assert len(warning["appointment_ids"]) == 20
    company_alerts = _refresh(pending_backlog_critical=30)["companies"][str(world["company"].id)]["alerts"]
    assert [a["kind"] for a in company_alerts] == ["pending_backlog"]  # per company too

    for _ in range(10):
        appointment(world)
    crossed = _backlog_alert(_refresh(pending_backlog_critical=30))
    assert crossed["severity"] == "critical"  # the same alert kind escalates once crossed


def test_flat_backlog_does_not_fire(app, clock):
    world = company()
    for _ in range(20):
        appointment(world)
    for _ in range(8):
        metrics = _refresh(pending_backlog_critical=30)
        clock.advance(FIVE_MIN)
    assert _backlog_alert(metrics) is None
    assert metrics["overall"]["health"] == "healthy"


def test_only_the_scheduled_refresh_writes_samples_and_old_ones_expire(app, clock):
    world = company()
    for _ in range(6):
        for _ in range(5):
            appointment(world)
        metrics = collect_sync_metrics(db.session, settings={"pending_backlog_critical": 40})  # not recording
        clock.advance(FIVE_MIN)
    assert _backlog_alert(metrics) is None

    for _ in range(4):
        for _ in range(2):
            appointment(world)
        _refresh(pending_backlog_critical=40)
        clock.advance(FIVE_MIN)
    assert _backlog_alert(_refresh(pending_backlog_critical=40)) is not None

    clock.advance(2 * HOUR)  # the rise is history now: the window holds one new sample
    assert _backlog_alert(_refresh(pending_backlog_critical=40)) is None


def _failure_step(row, clock, failed: int, total: int = 10):
    for i in range(total):
        attempt(row, at=clock.utcnow() - timedelta(seconds=i + 1),
                outcome=SyncOutcome.RETRY if i < failed else SyncOutcome.SUCCESS, code="http_503", commit=False)
    db.session.commit()


def _failure_alert(metrics):
    return next((a for a in metrics["overall"]["alerts"] if a["kind"] == "failure_rate"), None)


def test_rising_failure_rate_fires_and_a_flat_one_does_not(app, clock):
    rising = appointment(company("Rising"), sync=SyncStatus.SYNCED)
    for failed in (0, 2, 4, 6, 8):  # the hour's rate: 0, 10, 20, 30, 40 %
        _failure_step(rising, clock, failed)
        metrics = _refresh()
        clock.advance(FIVE_MIN)
    alert = _failure_alert(metrics)
    assert alert is not None and alert["severity"] == "warning"
    assert alert["message"] == ("The sync failure rate is rising by about 120 points per hour (now 40%); at this "
                                "pace it reaches the critical 50% in about 5 min")


def test_flat_failure_rate_does_not_fire(app, clock):
    flat = appointment(company("Flat"), sync=SyncStatus.SYNCED)
    for _ in range(6):
        _failure_step(flat, clock, failed=4)  # 40 % every time
        metrics = _refresh()
        clock.advance(FIVE_MIN)
    assert _failure_alert(metrics) is None
    assert metrics["overall"]["failure_rate_1h"] == 0.4
