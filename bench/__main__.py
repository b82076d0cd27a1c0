"""`python -m bench` (`make bench`): load each size into each database, measure, and
print one table with every figure side by side (also written as JSON to
bench/results/).

    python -m bench                                   # 1k, 10k, 100k, 1M on PostgreSQL and SQLite
    python -m bench --sizes 1k,10k --db sqlite --only availability,dashboard

PostgreSQL: BENCH_DATABASE_URL, else DATABASE_URL (skipped with a note when neither
reaches a server). Redis: BENCH_REDIS_URL, default redis://127.0.0.1:6379/9 — the
bench empties that database, so give it one of its own. See README, "Benchmarks".
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone

BENCHES = ("availability", "dashboard", "cache", "booking", "sync")
DEFAULT_SIZES = "1k,10k,100k,1M"


def parse_args(argv=None) -> argparse.Namespace:
    from bench.world import parse_size

    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help=f"appointment counts (default {DEFAULT_SIZES})")
    parser.add_argument("--db", default="postgres,sqlite", help="postgres, sqlite or both (default both)")
    parser.add_argument("--only", default=",".join(BENCHES), help=f"some of {', '.join(BENCHES)}")
    parser.add_argument("--requests", type=int, default=400, help="check_availability requests per cell")
    parser.add_argument("--bookings-per-caller", type=int, default=25, help="start_booking calls per caller (16)")
    parser.add_argument("--sync-jobs", type=int, default=300, help="sync jobs drained per cell")
    parser.add_argument("--cache-questions", type=int, default=30, help="cold/warm question pairs per cell")
    parser.add_argument("--out", help="JSON file (default bench/results/bench-<UTC time>.json)")
    args = parser.parse_args(argv)
    try:
        args.size_list = sorted({parse_size(s) for s in args.sizes.split(",") if s.strip()})
    except ValueError as exc:
        parser.error(f"--sizes: {exc}")
    args.db_list = [d.strip() for d in args.db.split(",") if d.strip()]
    unknown = set(args.db_list) - {"postgres", "sqlite"}
    if unknown or not args.db_list:
        parser.error(f"--db: unknown {', '.join(sorted(unknown)) or 'nothing'}; use postgres and/or sqlite")
    args.benches = {b.strip() for b in args.only.split(",") if b.strip()}
    if args.benches - set(BENCHES) or not args.benches:
        parser.error(f"--only: choose from {', '.join(BENCHES)}")
    return args


def machine(targets) -> dict:
    info = {"cpus": os.cpu_count(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform()}
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            total_kb = int(next(line for line in handle if line.startswith("MemTotal")).split()[1])
        info["ram_gib"] = round(total_kb / 1024 / 1024, 1)
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            info["cpu"] = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), "")
    except (OSError, StopIteration, ValueError):
        pass
    for target in targets:
        if target.name == "postgres" and target.available:
            from sqlalchemy import create_engine, text

            engine = create_engine(target.url)
            with engine.connect() as conn:
                info["postgres"] = conn.execute(text("SHOW server_version")).scalar()
            engine.dispose()
    return info


def log(message: str) -> None:
    print(f"[bench {datetime.now(timezone.utc):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def run_cell(target, size: int, args) -> dict:
    from core.extensions import db

    from bench import availability, booking, dashboard, databases, loader, sync_drain, world

    p = world.plan(size, datetime.now(timezone.utc))
    databases.fresh_schema(target)
    app = databases.make_app(target)
    with app.app_context():
        report = loader.load(db.engine, p)
        db.engine.dispose()
    log(f"{target.name} {world.size_label(size)}: loaded {report.appointments} appointments, {report.segments} "
        f"segments, {report.attempts} sync attempts, {report.customers} customers, {report.staff} staff "
        f"in {report.seconds:.1f} s")
    cell: dict = {"load": report.__dict__, "load_average_before": os.getloadavg()}
    steps = [
        ("availability", lambda: availability.overhead(target, p, requests=args.requests)),
        ("dashboard", lambda: dashboard.tiles(target, requests=200, computations=7)),
        ("cache", lambda: availability.slot_cache(target, p, requests=args.cache_questions)),
        # These two write (bookings, synced appointments): last.
        ("booking", lambda: booking.throughput(target, p, per_caller=args.bookings_per_caller)),
        ("sync", lambda: sync_drain.drain(target, p, jobs=args.sync_jobs)),
    ]
    for name, step in steps:
        if name not in args.benches:
            continue
        started = time.perf_counter()
        try:
            cell[name] = step()
        except Exception as exc:  # noqa: BLE001 - one failed benchmark must not lose the others' figures
            log(f"{target.name} {world.size_label(size)} {name}: FAILED {type(exc).__name__}: {exc}")
            cell[name] = {"error": f"{type(exc).__name__}: {exc}"}
        log(f"{target.name} {world.size_label(size)} {name}: {json.dumps(cell[name], default=str)[:300]} "
            f"({time.perf_counter() - started:.0f} s)")
    cell["load_average_after"] = os.getloadavg()
    return cell


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from bench import databases, report

    targets = []
    for name in args.db_list:
        target = databases.postgres_target() if name == "postgres" else databases.sqlite_target()
        if not target.available:
            log(f"PostgreSQL {target.note}")
        targets.append(target)
    measured = [t for t in targets if t.available]
    if not measured:
        print("nothing to measure: " + "; ".join(t.note for t in targets))
        return 1
    started_at = datetime.now(timezone.utc)
    load_start = os.getloadavg()
    cells: dict[tuple[str, int], dict] = {}
    for size in args.size_list:
        for target in measured:
            cells[(target.name, size)] = run_cell(target, size, args)
    load_end = os.getloadavg()
    header, lines, records = report.build(cells, args.size_list, [t.name for t in measured], args.benches)
    table = report.render(header, lines)
    info = machine(measured)
    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    print(table)
    print()
    print(f"Machine: {info.get('cpus')} CPUs ({info.get('cpu', '?')}), {info.get('ram_gib', '?')} GiB RAM; "
          f"PostgreSQL {info.get('postgres', '–')}, SQLite {info['sqlite']}, Python {info['python']}")
    print(f"Load average (1/5/15 min): {' '.join(f'{v:.2f}' for v in load_start)} at the start, "
          f"{' '.join(f'{v:.2f}' for v in load_end)} at the end; "
          f"{(datetime.now(timezone.utc) - started_at).total_seconds() / 60:.1f} min; command: {command.strip()}")
    for target in targets:
        if not target.available:
            print(f"PostgreSQL {target.note}")
    out = args.out or os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                                   f"bench-{started_at:%Y%m%dT%H%M%SZ}.json")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        json.dump({"started_at": started_at.isoformat(), "command": command.strip(), "machine": info,
                   "load_average": {"start": load_start, "end": load_end}, "table": records,
                   "skipped": [t.note for t in targets if not t.available],
                   "cells": {f"{db}/{size}": cell for (db, size), cell in cells.items()}},
                  handle, indent=2, default=str)
    print(f"JSON: {os.path.relpath(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
