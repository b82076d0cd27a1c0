"""Watch PostgreSQL from outside a test's threads: is a backend waiting for a lock?

Interleaving tests use this instead of sleeping: a thread that should be blocked on
`lock_appointment` is proven blocked by PostgreSQL itself before the test lets the
lock holder go on.
"""

from __future__ import annotations

import time

from sqlalchemy import text

from core.extensions import db

WAITING_FOR_A_LOCK = text(
    "SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
)


def wait_until_a_backend_waits_for_a_lock(*, timeout: float = 15.0) -> bool:
    """True once another connection is blocked on a row lock; False after `timeout` s."""
    deadline = time.monotonic() + timeout
    with db.engine.connect() as conn:
        while time.monotonic() < deadline:
            if conn.execute(WAITING_FOR_A_LOCK).scalar():
                return True
            conn.rollback()  # a fresh snapshot of pg_stat_activity on the next read
            time.sleep(0.02)
    return False
