"""Independent checks of the database after a reliability run: plain SQL, not the code
under test, so a bug in the guard cannot hide itself."""

from __future__ import annotations

from sqlalchemy import text

from core.booking_guard import overlapping_pairs_sql
from core.extensions import db


def overlapping_segments() -> list[tuple[int, int]]:
    """Pairs of active segments of one staff member that overlap (the self-join)."""
    return [tuple(row) for row in db.session.execute(text(overlapping_pairs_sql())).all()]


def active_appointments() -> list[dict]:
    rows = db.session.execute(text(
        "SELECT id, staff_id, starts_at, call_id, sync_status FROM appointments "
        "WHERE status IN ('scheduled', 'confirmed', 'booked') ORDER BY id"
    )).mappings().all()
    return [dict(row) for row in rows]


def half_written() -> dict[str, list]:
    """Everything a crashed or refused write could leave behind; all lists must be empty."""
    query = {
        # an active appointment that blocks nobody's calendar
        "active_without_active_segments": (
            "SELECT a.id FROM appointments a WHERE a.status IN ('scheduled', 'confirmed', 'booked') AND NOT EXISTS "
            "(SELECT 1 FROM appointment_segments s WHERE s.appointment_id = a.id AND s.active)"
        ),
        # an appointment without any segment at all
        "without_segments": (
            "SELECT a.id FROM appointments a WHERE NOT EXISTS "
            "(SELECT 1 FROM appointment_segments s WHERE s.appointment_id = a.id)"
        ),
        # a segment still blocking for an appointment that is not active
        "inactive_with_active_segments": (
            "SELECT s.id FROM appointment_segments s JOIN appointments a ON a.id = s.appointment_id "
            "WHERE s.active AND a.status NOT IN ('scheduled', 'confirmed', 'booked')"
        ),
        # a customer created by a booking that was then refused (rolled back only halfway)
        "customers_without_appointments": (
            "SELECT c.id FROM customers c WHERE c.name LIKE 'Kunde Nummer %' AND NOT EXISTS "
            "(SELECT 1 FROM appointments a WHERE a.customer_id = c.id)"
        ),
    }
    return {name: [row[0] for row in db.session.execute(text(sql))] for name, sql in query.items()}


__all__ = ["active_appointments", "half_written", "overlapping_segments"]
