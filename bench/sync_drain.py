"""How fast two sync workers carry new bookings to Cal.com, and what the worker adds
on top of the bare Cal.com calls.

* drain — N pending appointments with their sync jobs queued; two production
  workers (`rq worker --worker-class workers.app_worker.SimpleAppWorker calcom-sync`,
  as in the Procfile: each job runs in the worker process, no fork) against the
  Cal.com emulator answering at once; timed
  from the first enqueue to the last attempt's end (written by the workers);
* raw — the same N bookings made with `CalcomClient.create_booking` from two
  processes, nothing else around them (the emulator's bookings emptied first).

The ratio raw rate / drain rate is the worker's overhead (claim and result
transactions, locks, the job queue).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Iterator

import redis as redis_lib
import requests
from rq import Worker
from sqlalchemy import func, select

from calcom.client import Attendee, CalcomClient
from calcom.metadata import booking_metadata
from core import PROJECT_ROOT
from core.booking_guard import Interval, NewAppointment, SlotTaken, insert_appointment
from core.extensions import db
from core.models import Appointment, SyncAttempt
from core.queues import enqueue_sync

from bench import world
from bench.databases import make_app, redis_url
from bench.emulator_server import emulator_process

WORKERS = 2
WORKER_CLASS = "workers.app_worker.SimpleAppWorker"  # the Procfile's `worker`
FIRST_DAY = 35  # days ahead: beyond the loaded book, so every slot is free


def _slots(p: world.Plan) -> Iterator[tuple[world.Staff, int, datetime]]:
    """(staff member, service index, start): one booking per company and half hour, so
    that Cal.com always has a free host of the team event type."""
    today = datetime.now(timezone.utc).astimezone(world.TZ).date()
    by_company: dict[int, list[world.Staff]] = {}
    for member in p.staff:
        by_company.setdefault(member.company_id, []).append(member)
    offset = FIRST_DAY
    while True:
        day = today + timedelta(days=offset)
        offset += 1
        if day.isoweekday() > 5:
            continue
        for slot in range(16):  # 09:00 … 16:30
            start = datetime(day.year, day.month, day.day, 9, 0, tzinfo=world.TZ) + timedelta(minutes=30 * slot)
            for members in by_company.values():
                yield members[slot % len(members)], 0, start.astimezone(timezone.utc)


def _book_pending(p: world.Plan, count: int) -> list[int]:
    """`count` new appointments waiting for their first sync (slots an earlier run
    already took are skipped)."""
    ids = []
    for member, k, start in _slots(p):
        if len(ids) >= count:
            break
        company = p.companies[member.company_id - 1]
        end = start + timedelta(minutes=world.SERVICES[k][1])
        try:
            appointment = insert_appointment(db.session, NewAppointment(
                company_id=company.id, branch_id=member.branch_id, service_id=company.service_ids[k],
                staff_id=member.id, customer_id=company.customer_first,
                busy=[Interval(start, end, company.event_type_ids[k])], starts_at=start, ends_at=end))
        except SlotTaken:
            continue
        ids.append(appointment.id)
    return ids


def _start_workers(target, url: str) -> list[subprocess.Popen]:
    env = dict(os.environ, DATABASE_URL=target.url, REDIS_URL=redis_url(), CALCOM_API_URL=url,
               CALCOM_API_KEY="cal_bench_key", LOG_LEVEL="ERROR", PYTHONPATH=PROJECT_ROOT)
    rq = os.path.join(os.path.dirname(sys.executable), "rq")
    return [subprocess.Popen([rq, "worker", "--worker-class", WORKER_CLASS, "--url", redis_url(),
                              "--quiet", "calcom-sync"], cwd=PROJECT_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(WORKERS)]


def _stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def drain(target, p: world.Plan, *, jobs: int) -> dict:
    connection = redis_lib.Redis.from_url(redis_url())
    connection.flushdb()
    app = make_app(target, CALCOM_SYNC_TIMEOUT=30.0)
    with emulator_process(target) as url, app.app_context():
        app.config["CALCOM_API_URL"] = url
        ids = _book_pending(p, jobs)
        db.session.remove()
        workers = _start_workers(target, url)
        try:
            deadline = time.time() + 120
            while Worker.count(connection=connection) < WORKERS:
                if time.time() > deadline or any(w.poll() is not None for w in workers):
                    raise RuntimeError("the rq workers did not start")
                time.sleep(0.1)
            started = datetime.now(timezone.utc)
            for appointment_id in ids:
                enqueue_sync(appointment_id, "create", 1)
            synced = 0
            deadline = time.time() + 600
            while time.time() < deadline:
                synced = db.session.scalar(select(func.count()).select_from(Appointment).where(
                    Appointment.id.in_(ids), Appointment.sync_status != "pending"))
                db.session.rollback()
                if synced >= len(ids):
                    break
                time.sleep(0.25)
            finished = db.session.scalar(select(func.max(SyncAttempt.finished_at)).where(
                SyncAttempt.appointment_id.in_(ids)))
            outcomes = {status.value: count for status, count in db.session.execute(
                select(Appointment.sync_status, func.count()).where(Appointment.id.in_(ids))
                .group_by(Appointment.sync_status))}
        finally:
            _stop(workers)
        db.session.remove()
        seconds = (finished - started).total_seconds()
        requests.post(f"{url}/_emulator/reset", json={"bookings": True}, timeout=10)
        raw_seconds = _raw_calls(url, p, jobs)
        db.engine.dispose()
    drain_rate = len(ids) / seconds
    raw_rate = jobs / raw_seconds
    return {"jobs": len(ids), "synced": outcomes.get("synced", 0), "seconds": round(seconds, 3),
            "per_second": round(drain_rate, 1), "raw_seconds": round(raw_seconds, 3),
            "raw_per_second": round(raw_rate, 1), "overhead": round(raw_rate / drain_rate, 2)}


def _raw_part(url: str, bookings, results) -> None:
    client = CalcomClient(url, "cal_bench_key", read_timeout=30.0)
    for number, (event_type_id, start) in bookings:
        client.create_booking(event_type_id=event_type_id, start=start,
                              attendee=Attendee(name="Kunde", phone_number="+4915100000001"),
                              metadata=booking_metadata(900_000_000 + number))
    results.put(time.time())


def _raw_calls(url: str, p: world.Plan, count: int) -> float:
    bookings = []
    for number, (member, k, start) in enumerate(_slots(p)):
        if number >= count:
            break
        bookings.append((number, (p.companies[member.company_id - 1].event_type_ids[k], start)))
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [context.Process(target=_raw_part, args=(url, bookings[i::WORKERS], results))
                 for i in range(WORKERS)]
    started = time.time()
    for process in processes:
        process.start()
    ended = max(results.get(timeout=600) for _ in processes)
    for process in processes:
        process.join()
    return ended - started
