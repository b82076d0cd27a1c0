"""`/metrics` (protected, the listed series, counts that move with traffic) and the log
lines (JSON, one per event, with the ids of the call and masked personal data)."""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core import logs, pii
from core.extensions import db
from core.queues import enqueue_sync
from tests.factories import book, make_world
from tests.support.sync_helpers import run_sync_jobs
from tests.voice.conftest import Voice

UTC = timezone.utc
TEN = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def samples(client, **headers) -> dict[tuple, float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.data
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


# --- who may scrape ---------------------------------------------------------------


def test_metrics_are_served_to_this_host_only_by_default(app, client):
    assert client.get("/metrics").status_code == 200  # the test client is 127.0.0.1
    outside = client.get("/metrics", environ_base={"REMOTE_ADDR": "203.0.113.7"})
    assert outside.status_code == 403


def test_with_a_token_the_bearer_must_match(app, client):
    from core.observability import allowed_networks

    app.config["METRICS_TOKEN"] = "s3cret-token"
    app.extensions["metrics_networks"] = allowed_networks(app.config)
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics").headers["WWW-Authenticate"].startswith("Bearer")
    ok = client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"},
                    environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert ok.status_code == 200


def test_allowed_networks_are_checked_and_validated(app, client):
    from core.observability import allowed_networks

    app.extensions["metrics_networks"] = allowed_networks({"METRICS_ALLOWED_NETWORKS": "10.0.0.0/8, fd00::/8"})
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.9.8.7"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 403
    with pytest.raises(ValueError, match="not an IP address"):
        allowed_networks({"METRICS_ALLOWED_NETWORKS": "intranet"})


# --- the series move with traffic --------------------------------------------------


def test_request_latency_queue_depth_and_sync_outcomes(app, client, calcom_emulator, clock):
    world = make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    before = samples(client)
    client.get("/healthz")
    appointment = book(world, TEN)
    enqueue_sync(appointment.id, "create", appointment.sync_version)
    queued = samples(client)
    assert value(queued, "slotguard_rq_jobs", queue="calcom-sync", state="queued") == 1
    assert value(queued, "slotguard_http_request_duration_seconds_count", endpoint="health.healthz", method="GET",
                 status="200") == value(before, "slotguard_http_request_duration_seconds_count",
                                        endpoint="health.healthz", method="GET", status="200") + 1

    run_sync_jobs(app)
    after = samples(client)
    assert value(after, "slotguard_rq_jobs", queue="calcom-sync", state="queued") == 0
    assert value(after, "slotguard_sync_jobs_total", action="create", outcome="success") == \
        value(before, "slotguard_sync_jobs_total", action="create", outcome="success") + 1
    assert value(after, "slotguard_sync_job_duration_seconds_count", action="create", outcome="success") >= 1
    assert value(after, "slotguard_calcom_requests_total", endpoint="POST /v2/bookings", status="201") == \
        value(before, "slotguard_calcom_requests_total", endpoint="POST /v2/bookings", status="201") + 1
    assert value(after, "slotguard_calcom_request_duration_seconds_count", endpoint="POST /v2/bookings",
                 outcome="ok") >= 1
    assert value(after, "slotguard_rq_redis_up") == 1


def test_voice_outcomes_and_holds_are_counted(app, client, calcom_emulator, clock):
    voice = Voice(client)
    make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    before = samples(client)
    asked = {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00", "staff": "Anna"}
    checked = voice("check_availability", asked, call_id="call_metrics_1")
    assert checked["available"], checked
    booked = voice("start_booking", {"lock_key": checked["lock_key"], "customer_name": "Erika"},
                   call_id="call_metrics_1")
    assert booked["success"], booked
    again = voice("check_availability", asked, call_id="call_metrics_2")
    assert not again["available"]
    late = voice("start_booking", {"lock_key": checked["lock_key"], "customer_name": "Max"}, call_id="call_metrics_3")
    assert late["error_code"] in {"lock_expired", "slot_taken"}
    after = samples(client)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("slotguard_voice_function_calls_total", function="check_availability", outcome="available") == 1
    assert delta("slotguard_voice_function_calls_total", function="check_availability",
                 outcome="not_available") == 1
    assert delta("slotguard_voice_function_calls_total", function="start_booking", outcome="booked") == 1
    assert delta("slotguard_voice_function_calls_total", function="start_booking", outcome=late["error_code"]) == 1
    assert delta("slotguard_slot_holds_total", event="acquired") >= 1
    assert delta("slotguard_slot_holds_total", event="released") >= 1
    assert delta("slotguard_slot_holds_total", event="expired") == (1 if late["error_code"] == "lock_expired" else 0)


def test_the_metrics_collector_times_itself(app, client, clock):
    from monitoring.metrics import collect_sync_metrics

    before = value(samples(client), "slotguard_sync_metrics_collect_duration_seconds_count")
    collect_sync_metrics(db.session)
    assert value(samples(client), "slotguard_sync_metrics_collect_duration_seconds_count") == before + 1


# --- log lines ------------------------------------------------------------------------


@pytest.fixture
def json_log():
    stream = io.StringIO()
    logs.configure("json", "INFO", stream=stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    logs.configure("text", "INFO")


def test_masking_phone_numbers_and_emails():
    text = "caller +4915112345678 (+49 151 1234 5678) wrote erika.muster@example.com; appointment 12 at 10:30"
    masked = pii.mask_text(text)
    assert "5112345678" not in masked and "1234 5678" not in masked and "erika.muster" not in masked
    assert "+49…78" in masked and "e…@….com" in masked
    assert "appointment 12 at 10:30" in masked


def test_json_lines_carry_the_request_and_call_id_and_mask_pii(app, client, json_log, calcom_emulator, clock):
    voice = Voice(client)
    make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    logging.getLogger("booking.test").warning("caller %s, mail %s", "+4915112345678", "erika@example.com")
    args = {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00"}
    response = voice.post("check_availability", voice.body("check_availability", args, call_id="call_log_1"),
                          headers={"X-Request-ID": "req-abc-123"})
    assert response.headers["X-Request-ID"] == "req-abc-123"
    lines = json_log()
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    pii = next(line for line in lines if line["logger"] == "booking.test")
    assert "+4915112345678" not in pii["message"] and "erika@example.com" not in pii["message"]
    access = next(line for line in lines if line["logger"] == "slotguard.access" and "/retell/" in line["message"])
    assert access["request_id"] == "req-abc-123" and access["call_id"] == "call_log_1"


def test_a_bad_request_id_is_replaced(app, client):
    response = client.get("/healthz", headers={"X-Request-ID": "no spaces or <script> please"})
    assert response.headers["X-Request-ID"] != "no spaces or <script> please"
    assert len(response.headers["X-Request-ID"]) == 32


def test_the_sync_job_logs_with_the_ids_of_the_call_that_booked(app, client, json_log, calcom_emulator, clock):
    """Follow one phone call from the function call to the Cal.com booking."""
    voice = Voice(client)
    make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    checked = voice("check_availability", {"service": "Herrenhaarschnitt", "date": "2026-12-08", "time": "10:00"},
                    call_id="call_follow_me")
    args = {"lock_key": checked["lock_key"], "customer_name": "Erika", "customer_email": "erika@example.com"}
    booked = voice.post("start_booking", voice.body("start_booking", args, call_id="call_follow_me"),
                        headers={"X-Request-ID": "req-follow-me"}).get_json()
    assert booked["success"], booked
    run_sync_jobs(app)
    sync_lines = [line for line in json_log() if line["logger"] == "calcom.sync"]
    assert sync_lines, json_log()
    assert all(line.get("call_id") == "call_follow_me" and line.get("request_id") == "req-follow-me"
               and line.get("appointment_id") == booked["appointment_id"] for line in sync_lines)
    assert not any("erika@example.com" in json.dumps(line) for line in json_log())
