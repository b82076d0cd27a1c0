"""SQLite: partial indexes whose predicate is what queries actually say (`active = 1`).

SQLite uses a partial index only when the query's WHERE repeats the index's
predicate term for term. SQLAlchemy writes a bare boolean column as `active = 1` on
SQLite (`active` on PostgreSQL), while these two indexes were created `WHERE active`
and `WHERE requires_manual_review`: every overlap check and availability lookup
scanned all of appointment_segments (found by `python -m bench`, README
"Benchmarks"). PostgreSQL's predicates already match the bare column and stay.

Revision ID: bench_0001
Revises: integration_0001
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'bench_0001'
down_revision = 'integration_0001'
branch_labels = None
depends_on = None

INDEXES = (
    # (table, index, columns, old predicate, new predicate)
    ('appointment_segments', 'ix_appointment_segments_staff_active_start', ['staff_id', 'starts_at'],
     'active', 'active = 1'),
    ('appointments', 'ix_appointments_manual_review', ['company_id'],
     'requires_manual_review', 'requires_manual_review = 1'),
)


def _recreate(use_new: bool) -> None:
    if op.get_bind().dialect.name != 'sqlite':
        return
    for table, name, columns, old, new in INDEXES:
        op.drop_index(name, table_name=table)
        op.create_index(name, table, columns, unique=False, sqlite_where=sa.text(new if use_new else old))


def upgrade():
    _recreate(use_new=True)


def downgrade():
    _recreate(use_new=False)
