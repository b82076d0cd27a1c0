"""start_booking under 16 concurrent callers: bookings per second, answer times, and
the proof afterwards that no staff member got two overlapping active segments.

Each caller first asks check_availability (untimed) and keeps the lock key, as the
voice agent does; then all callers book at once, four processes of four threads each
(so both cores can work, as a pre-forking server would), each answer timed. The
Cal.com slots fetch is short-circuited as in the availability benchmark; the sync
job is queued in Redis as in production (FEATURE_ASYNC_BOOKING).
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import timedelta

import redis as redis_lib
from sqlalchemy import text

from core.booking_guard import MAX_SEGMENT, overlapping_pairs_sql
from core.clock import utcnow
from core.extensions import db

from bench import stats, world
from bench.databases import make_app, redis_url
from bench.stub_calcom import instant_calcom
from bench.voice import asks, post, request_body

PROCESSES = 4
THREADS = 4
CALLERS = PROCESSES * THREADS


def _config():
    # Holds must outlive the preparation of all callers' slots.
    return {"SLOT_CACHE_SECONDS": 0, "SLOT_LOCK_TTL": 900}


def _prepare(target, p: world.Plan, bookings: int, seed: int) -> list[tuple[str, dict, str]]:
    """(call id, start_booking args, branch number) for `bookings` held slots."""
    app = make_app(target, **_config())
    prepared = []
    questions = asks(p, bookings * 6, seed=seed, days=(8, 27))
    with app.app_context(), instant_calcom(p):
        client = app.test_client()
        for index, ask in enumerate(questions):
            if len(prepared) >= bookings:
                break
            call_id = f"call_bk_{seed}_{index}"
            _, body = post(client, "check_availability",
                           request_body("check_availability", ask.args(), call_id=call_id, to_number=ask.to_number))
            if body.get("available") and body.get("lock_key"):
                args = {"lock_key": body["lock_key"], "name": f"Anrufer {index}", "phone": f"+4917{index:09d}"}
                prepared.append((call_id, args, ask.to_number))
        db.engine.dispose()
    if len(prepared) < bookings:
        raise RuntimeError(f"only {len(prepared)} of {bookings} slots could be held")
    return prepared


def _caller_process(target, p, jobs, barrier, results) -> None:
    app = make_app(target, **_config())
    lock = threading.Lock()
    found: list[tuple[float, bool, str]] = []
    marks: list[float] = []

    def caller(share):
        with app.app_context():
            client = app.test_client()
            barrier_local.wait()
            marks.append(time.time())
            for call_id, args, to_number in share:
                elapsed, body = post(client, "start_booking",
                                     request_body("start_booking", args, call_id=call_id, to_number=to_number))
                with lock:
                    found.append((elapsed, bool(body.get("success")), body.get("error_code") or "booked"))
            marks.append(time.time())

    barrier_local = threading.Barrier(THREADS + 1)
    with instant_calcom(p):
        threads = [threading.Thread(target=caller, args=(jobs[i::THREADS],)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        barrier.wait()
        barrier_local.wait()
        for thread in threads:
            thread.join()
    with app.app_context():
        db.engine.dispose()
    results.put((found, min(marks), max(marks)))


def throughput(target, p: world.Plan, *, per_caller: int, seed: int = 21) -> dict:
    redis_lib.Redis.from_url(redis_url()).flushdb()
    prepared = _prepare(target, p, CALLERS * per_caller, seed)
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [context.Process(target=_caller_process,
                                 args=(target, p, prepared[i::PROCESSES], barrier, results))
                 for i in range(PROCESSES)]
    for process in processes:
        process.start()
    gathered = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    answers = [item for found, _, _ in gathered for item in found]
    began = min(start for _, start, _ in gathered)
    ended = max(end for _, _, end in gathered)
    booked = sum(1 for _, ok, _ in answers if ok)
    codes: dict[str, int] = {}
    for _, _, code in answers:
        codes[code] = codes.get(code, 0) + 1
    return stats.summary_ms([elapsed for elapsed, _, _ in answers]) | {
        "callers": CALLERS, "requests": len(answers), "booked": booked, "answers": codes,
        "seconds": round(ended - began, 3), "per_second": round(booked / (ended - began), 1),
        "overlaps": count_overlaps(target),
    }


def count_overlaps(target) -> int:
    """The guard's proof (`core.booking_guard.overlapping_pairs_sql`) over every segment
    that could touch the bench's bookings (all of them lie ahead of yesterday; older
    rows were loaded non-overlapping and, on PostgreSQL, through the constraint)."""
    since = utcnow() - timedelta(days=1)
    app = make_app(target)
    with app.app_context():
        sql = overlapping_pairs_sql() + " AND a.starts_at >= :since AND b.starts_at >= :since_b"
        rows = db.session.execute(text(sql), {"since": _bind(target, since),
                                              "since_b": _bind(target, since - MAX_SEGMENT)}).all()
        db.session.remove()
        db.engine.dispose()
    return len(rows)


def _bind(target, moment):
    # SQLite keeps naive UTC text (core.types); PostgreSQL takes the aware datetime.
    return moment.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f") if target.name == "sqlite" else moment
