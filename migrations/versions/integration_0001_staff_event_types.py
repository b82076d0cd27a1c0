"""A staff member's own Cal.com event type for a service (host pinning).

Revision ID: integration_0001
Revises: ops_0001
Create Date: 2026-12-07

Cal.com's `POST /v2/bookings` has no host field: for a team event type Cal.com picks
the host. A staff member's personal event type (or a team event type with them as the
only fixed host) pins the booking to them; `staff_services.calcom_event_type_id` says
which one. NULL keeps the service's (or the step's) event type.

One nullable column and a unique constraint (a personal event type names exactly one
staff member and service), through batch mode: the same on SQLite and PostgreSQL.
"""
from alembic import op
import sqlalchemy as sa

# revision identifiers, used by Alembic.
revision = 'integration_0001'
down_revision = 'ops_0001'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_services', schema=None) as batch_op:
        batch_op.add_column(sa.Column('calcom_event_type_id', sa.Integer(), nullable=True))
        batch_op.create_unique_constraint('uq_staff_services_calcom_event_type_id', ['calcom_event_type_id'])


def downgrade():
    with op.batch_alter_table('staff_services', schema=None) as batch_op:
        batch_op.drop_constraint('uq_staff_services_calcom_event_type_id', type_='unique')
        batch_op.drop_column('calcom_event_type_id')
