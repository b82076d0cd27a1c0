"""The sync job's round trips while it holds the appointment's row lock: what the plan
needs of the service, staff member, branch and customer is read in one query, not in
one lazy load each (README "Benchmarks": every round trip is paid by every job)."""

from __future__ import annotations



from core.models import SyncStatus
from core.queues import enqueue_sync
from tests.factories import book
from tests.support.sql_trace import recorded_statements
from tests.support.sync_helpers import bookings_of, reload, run_sync_jobs
from tests.test_sync_job import TEN, calcom, world  # noqa: F401 - the sync tests' fixtures


def test_the_plan_reads_its_rows_in_one_query(app, world, calcom):  # noqa: F811 - the imported fixtures
    appointment = book(world, TEN)
    appointment_id = appointment.id
    enqueue_sync(appointment_id, "create", appointment.sync_version)

    with recorded_statements() as statements:
        run_sync_jobs(app)

    assert reload(appointment_id).sync_status == SyncStatus.SYNCED
    assert len(bookings_of(calcom, appointment_id)) == 1
    lazy_loads = [s for s in statements
                  if s.startswith(("SELECT staff.", "SELECT branches.", "SELECT customers."))]
    assert lazy_loads == []
    assert sum(s.startswith("SELECT services.") for s in statements) == 1  # with the others
