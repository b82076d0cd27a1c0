"""Bulk-load a `bench.world` into an empty, migrated Slotguard database.

PostgreSQL: `COPY … FROM STDIN` (text format) per table and chunk, in one
transaction, then the id sequences are moved past the loaded ids and the tables
analysed. SQLite: `executemany` in one transaction, then `ANALYZE`. Rows go in with
every index and constraint in place (the exclusion constraint included), so the
database afterwards is exactly what the app would have built — only much faster.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.engine import Engine

from bench import world

# Children before parents when emptying.
TABLES = ("audit_events", "sync_attempts", "appointment_segments", "appointments", "customers", "staff_services",
          "service_segments", "services", "staff", "branches", "users", "alert_notifications",
          "reconciliation_runs", "webhook_deliveries", "companies")
SEQUENCED = ("companies", "branches", "staff", "services", "service_segments", "customers", "appointments",
             "appointment_segments", "sync_attempts", "users", "audit_events")


@dataclass
class LoadReport:
    appointments: int = 0
    segments: int = 0
    attempts: int = 0
    customers: int = 0
    staff: int = 0
    seconds: float = 0.0


def empty(engine: Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE " + ", ".join(f'"{t}"' for t in TABLES) + " RESTART IDENTITY CASCADE"))
        else:
            for table in TABLES:
                conn.execute(text(f'DELETE FROM "{table}"'))


def load(engine: Engine, p: world.Plan, *, seed: int = 1) -> LoadReport:
    """Empty the tables, then load the world `p`; returns what was written."""
    empty(engine)
    started = time.perf_counter()
    writer = _PostgresWriter(engine) if engine.dialect.name == "postgresql" else _SqliteWriter(engine)
    report = LoadReport(staff=len(p.staff), customers=p.customers)
    try:
        for table, (columns, rows) in world.fixed_rows(p).items():
            writer.write(table, columns, rows)
        for chunk in world.appointment_chunks(p, seed=seed):
            writer.write("appointments", world.APPOINTMENT_COLUMNS, chunk.appointments)
            writer.write("appointment_segments", world.SEGMENT_COLUMNS, chunk.segments)
            writer.write("sync_attempts", world.ATTEMPT_COLUMNS, chunk.attempts)
            report.appointments += len(chunk.appointments)
            report.segments += len(chunk.segments)
            report.attempts += len(chunk.attempts)
        writer.commit()
    except BaseException:
        writer.rollback()
        raise
    writer.finish()
    report.seconds = time.perf_counter() - started
    return report


# --- value formatting -------------------------------------------------------------------


class _Times:
    """Epoch seconds → the database's text for a UTC timestamp (memoised: many repeat)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.memo: dict[int, str] = {}

    def __call__(self, seconds: int) -> str:
        found = self.memo.get(seconds)
        if found is None:
            found = datetime.fromtimestamp(seconds, timezone.utc).strftime(self.pattern)
            if len(self.memo) > 2_000_000:
                self.memo.clear()
            self.memo[seconds] = found
        return found


def _time_positions(columns: Sequence[str]) -> list[int]:
    return [i for i, name in enumerate(columns) if name in world.TIME_COLUMNS]


# --- PostgreSQL: COPY -------------------------------------------------------------------


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if value is True:
        return "t"
    if value is False:
        return "f"
    if isinstance(value, dict):
        value = json.dumps(value)
    value = str(value)
    if "\\" in value or "\t" in value or "\n" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return value


class _PostgresWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.raw = engine.raw_connection()
        self.conn = self.raw.driver_connection  # psycopg 3
        self.times = _Times("%Y-%m-%d %H:%M:%S+00")
        self.tables: set[str] = set()

    def write(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        positions = _time_positions(columns)
        times = self.times
        lines = []
        for row in rows:
            values = list(row)
            for i in positions:
                if values[i] is not None:
                    values[i] = times(values[i])
            lines.append("\t".join(map(_copy_text, values)))
        if not lines:
            return
        column_list = ", ".join(f'"{c}"' for c in columns)
        with self.conn.cursor() as cursor:
            with cursor.copy(f'COPY "{table}" ({column_list}) FROM STDIN') as copy:
                copy.write("\n".join(lines) + "\n")
        self.tables.add(table)

    def commit(self) -> None:
        with self.conn.cursor() as cursor:
            for table in SEQUENCED:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM \"{table}\"), false)")
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()
        self.raw.close()

    def finish(self) -> None:
        self.conn.autocommit = True
        with self.conn.cursor() as cursor:
            for table in sorted(self.tables):
                cursor.execute(f'VACUUM ANALYZE "{table}"')
        self.conn.autocommit = False
        self.raw.close()


# --- SQLite: executemany ----------------------------------------------------------------


class _SqliteWriter:
    def __init__(self, engine: Engine) -> None:
        self.raw = engine.raw_connection()
        self.conn = self.raw.driver_connection  # sqlite3, isolation_level None (core.database)
        self.conn.execute("BEGIN IMMEDIATE")
        # SQLAlchemy's format for SQLite DateTime (naive UTC, as core.types stores it).
        self.times = _Times("%Y-%m-%d %H:%M:%S.000000")

    def write(self, table: str, columns: Sequence[str], rows: Iterable[tuple]) -> None:
        positions = _time_positions(columns)
        json_positions = [i for i, name in enumerate(columns) if name == "opening_hours"]
        times = self.times

        def converted():
            for row in rows:
                values = list(row)
                for i in positions:
                    if values[i] is not None:
                        values[i] = times(values[i])
                for i in json_positions:
                    values[i] = json.dumps(values[i])
                yield values

        column_list = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" * len(columns))
        self.conn.executemany(f'INSERT INTO "{table}" ({column_list}) VALUES ({marks})', converted())

    def commit(self) -> None:
        self.conn.execute("COMMIT")

    def rollback(self) -> None:
        self.conn.execute("ROLLBACK")
        self.raw.close()

    def finish(self) -> None:
        self.conn.execute("ANALYZE")
        self.raw.close()


__all__ = ["LoadReport", "empty", "load"]
