"""Scale-out, shown: two gunicorn web processes (two workers each) and three RQ workers on
one PostgreSQL and one Redis, with the Cal.com emulator on the other side.

Concurrent signed `start_booking` calls — three callers per slot, spread over both web
processes — must end with one appointment per slot and none overlapping
(`overlapping_pairs_sql()`), every appointment booked in the emulator exactly once
(found by its metadata), and `/metrics` of either web process adding up the counts of
every process (gunicorn workers and RQ work horses share `PROMETHEUS_MULTIPROC_DIR`).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time as wall
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta, timezone

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from booking.retell_signature import sign
from calcom.metadata import APPOINTMENT_KEY
from core import PROJECT_ROOT
from core.booking_guard import overlapping_pairs_sql
from core.clock import local_to_utc
from core.extensions import db
from core.models import Appointment, SyncStatus
from tests.factories import make_world

pytestmark = [pytest.mark.slow, pytest.mark.postgres_only("SQLite has one writer and no server to share "
                                                          "between processes; scale-out needs PostgreSQL")]

BIN = os.path.dirname(sys.executable)
RETELL_KEY = "retell_scale_key"
SLOTS = [time(10, 0), time(10, 30), time(11, 0), time(11, 30), time(12, 0), time(12, 30)]
STAFF = ["Anna", "Ben"]
CALLERS_PER_SLOT = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def booking_day() -> date:
    day = datetime.now(timezone.utc).date() + timedelta(days=3)
    while day.isoweekday() == 7:
        day += timedelta(days=1)
    return day


def signed(body: dict) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    stamp = int(datetime.now(timezone.utc).timestamp() * 1000)
    return raw, {"Content-Type": "application/json", "X-Retell-Signature": sign(raw, RETELL_KEY, stamp)}


def metric_totals(base_url: str) -> dict[tuple, float]:
    response = requests.get(base_url + "/metrics", timeout=10)
    assert response.status_code == 200, response.text
    found: dict[tuple, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def total(found, name, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    return sum(v for (n, lab), v in found.items() if n == name and set(labels.items()) <= set(lab))


@pytest.fixture
def cluster(app, calcom_emulator, database_url, tmp_path):
    """2 × gunicorn (2 workers, 4 threads) + 3 × `rq worker`, as the Procfile starts them."""
    calcom_emulator.emulator.limiter.limit = 10_000  # this test is about processes, not Cal.com's limit
    metrics_dir = tmp_path / "prometheus"
    metrics_dir.mkdir()
    env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=app.config["REDIS_URL"],
               CALCOM_API_URL=app.config["CALCOM_API_URL"], CALCOM_API_KEY="cal_test_key",
               CALCOM_WEBHOOK_SECRET="whsec_test", RETELL_API_KEY=RETELL_KEY, SECRET_KEY="scale-secret",
               PROMETHEUS_MULTIPROC_DIR=str(metrics_dir), LOG_FORMAT="json", HOST="127.0.0.1",
               WEB_CONCURRENCY="2", WEB_THREADS="4", SYNC_BACKOFF_BASE_SECONDS="1", SYNC_BACKOFF_CAP_SECONDS="2",
               CALCOM_AVAILABILITY_TIMEOUT="10", PYTHONPATH=PROJECT_ROOT)
    processes, logs, urls = [], [], []
    try:
        for n in range(2):
            port = free_port()
            log = open(tmp_path / f"web-{n}.log", "w")
            logs.append(log)
            processes.append(subprocess.Popen(
                [os.path.join(BIN, "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"], cwd=PROJECT_ROOT,
                env=dict(env, PORT=str(port)), stdout=log, stderr=subprocess.STDOUT))
            urls.append(f"http://127.0.0.1:{port}")
        for n in range(3):
            log = open(tmp_path / f"worker-{n}.log", "w")
            logs.append(log)
            processes.append(subprocess.Popen(
                [os.path.join(BIN, "rq"), "worker", "--with-scheduler", "--url", app.config["REDIS_URL"],
                 "--worker-class", "workers.app_worker.SimpleAppWorker", "calcom-sync", "default"],
                cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
        deadline = wall.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if requests.get(url + "/readyz", timeout=5).status_code == 200:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    pass
                assert wall.monotonic() < deadline, (tmp_path / "web-0.log").read_text()
                wall.sleep(0.2)  # waiting for another process to start, not for time-dependent logic
        yield urls, tmp_path
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()


def test_two_web_processes_and_three_workers_share_one_database_and_redis(app, calcom_emulator, cluster):
    make_world()
    calcom_emulator.load_world(db.session, preload_bookings=False)
    db.session.remove()
    urls, folder = cluster
    day = booking_day()

    calls = []
    for slot_index, slot in enumerate(SLOTS):
        for staff in STAFF:
            for caller in range(CALLERS_PER_SLOT):
                n = len(calls)
                calls.append({"name": "start_booking", "call": {
                    "call_id": f"call_scale_{n}", "from_number": f"+49151000{n:05d}", "to_number": "+4930111111"},
                    "args": {"service": "Herrenhaarschnitt", "date": day.isoformat(), "time": slot.strftime("%H:%M"),
                             "staff": staff, "customer_name": f"Kunde {n}"}})

    def post(index_and_body):
        index, body = index_and_body
        raw, headers = signed(body)
        url = urls[index % 2]  # every slot is asked for through both web processes
        response = requests.post(f"{url}/retell/functions/start_booking", data=raw, headers=headers, timeout=30)
        assert response.status_code == 200, response.text
        return response.json()

    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(post, enumerate(calls)))

    booked = [a for a in answers if a["success"]]
    refused = [a for a in answers if not a["success"]]
    assert len(booked) == len(SLOTS) * len(STAFF), [a["message"] for a in refused]
    assert {a["error_code"] for a in refused} <= {"slot_taken", "lock_expired"}, refused

    # Zero overlaps, as the database sees it.
    assert db.session.execute(text(overlapping_pairs_sql())).all() == []
    starts = {local_to_utc(datetime.combine(day, slot), "Europe/Berlin") for slot in SLOTS}
    appointments = db.session.scalars(select(Appointment)).all()
    assert {a.starts_at for a in appointments} == starts and len(appointments) == len(booked)
    db.session.remove()

    # Every appointment reaches Cal.com exactly once (three workers race for the jobs).
    deadline = wall.monotonic() + 60
    while db.session.scalar(select(func.count(Appointment.id)).where(Appointment.sync_status != SyncStatus.SYNCED)):
        db.session.remove()
        assert wall.monotonic() < deadline, (folder / "worker-0.log").read_text()[-3000:]
        wall.sleep(0.2)  # waiting for the worker processes
    for appointment in db.session.scalars(select(Appointment)):
        made = calcom_emulator.state.find(metadata={APPOINTMENT_KEY: str(appointment.id)})
        assert [b.uid for b in made] == [appointment.calcom_booking_uid]
        assert made[0].status == "accepted" and made[0].start == appointment.starts_at
    assert sum(1 for b in calcom_emulator.state.bookings.values() if b.active) == len(booked)

    # /metrics adds up every process: the same totals through either web process.
    first, second = metric_totals(urls[0]), metric_totals(urls[1])
    name = "slotguard_voice_function_calls_total"
    for found in (first, second):
        assert total(found, name, function="start_booking") == len(calls)
        assert total(found, name, function="start_booking", outcome="booked") == len(booked)
        assert total(found, "slotguard_http_request_duration_seconds_count",
                     endpoint="retell.call_function") == len(calls)
        assert total(found, "slotguard_sync_jobs_total", action="create", outcome="success") == len(booked)
        assert total(found, "slotguard_calcom_requests_total", endpoint="POST /v2/bookings", status="201") \
            == len(booked)
    counters = {k: v for k, v in first.items() if k[0].endswith("_total")}
    assert counters == {k: v for k, v in second.items() if k[0].endswith("_total")}
    # Several processes really did the work: gunicorn workers (by pid) and RQ workers
    # (one identity per RQ worker, `core.prom`).
    identities = {path.stem.split("_", 1)[1] for path in (folder / "prometheus").glob("counter_*.db")}
    assert len({i for i in identities if i.startswith("rq")}) >= 2, identities
    assert len({i for i in identities if i.isdigit()}) >= 2, identities
