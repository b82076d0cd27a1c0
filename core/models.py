"""The data model: who offers what, who booked when, and how its sync to Cal.com went.

Times are `UTCDateTime` everywhere (aware UTC in Python). The overlap guard lives on
`AppointmentSegment`; see `core.booking_guard` for the function every writer uses.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.clock import utcnow
from core.extensions import db
from core.types import UTCDateTime


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """Store enums by value as plain strings with a CHECK, the same on every database."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class AppointmentStatus(str, enum.Enum):
    SCHEDULED = "scheduled"
    CONFIRMED = "confirmed"
    BOOKED = "booked"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    NO_SHOW = "no_show"


# Statuses in which an appointment keeps its staff busy.
ACTIVE_STATUSES = (
    AppointmentStatus.SCHEDULED,
    AppointmentStatus.CONFIRMED,
    AppointmentStatus.BOOKED,
)


class SyncStatus(str, enum.Enum):
    PENDING = "pending"
    SYNCED = "synced"
    FAILED = "failed"


class SyncAction(str, enum.Enum):
    CREATE = "create"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"


class AppointmentSource(str, enum.Enum):
    VOICE = "voice"
    DASHBOARD = "dashboard"
    CALCOM = "calcom"


class ServiceKind(str, enum.Enum):
    REGULAR = "regular"
    COMPOSITE = "composite"


class Role(str, enum.Enum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


class SyncOutcome(str, enum.Enum):
    SUCCESS = "success"  # Cal.com now matches the appointment
    RETRY = "retry"  # a transient failure; another attempt is scheduled
    FAILED = "failed"  # gave up (retries exhausted or not retryable)
    SKIPPED = "skipped"  # stale job: the appointment changed since it was enqueued


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class Company(TimestampMixin, db.Model):
    __tablename__ = "companies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(80), unique=True)

    branches: Mapped[list[Branch]] = relationship(back_populates="company", order_by="Branch.id")
    services: Mapped[list[Service]] = relationship(back_populates="company", order_by="Service.id")

    def __repr__(self) -> str:
        return f"<Company {self.id} {self.slug}>"


class Branch(TimestampMixin, db.Model):
    """A location with its own phone number, time zone and opening hours."""

    __tablename__ = "branches"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    # The number callers dial, in E.164; the voice agent finds the branch by it.
    phone_number: Mapped[str | None] = mapped_column(String(20), unique=True)
    timezone: Mapped[str] = mapped_column(String(64), default="Europe/Berlin")
    # Local opening hours per ISO weekday ("1".."7" = Monday..Sunday):
    # {"1": [["09:00", "18:00"]], ...}; a missing day is closed.
    opening_hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    company: Mapped[Company] = relationship(back_populates="branches")
    staff: Mapped[list[Staff]] = relationship(back_populates="branch", order_by="Staff.id")

    def __repr__(self) -> str:
        return f"<Branch {self.id} {self.name}>"


staff_services = db.Table(
    "staff_services",
    db.Column("staff_id", ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True),
    db.Column("service_id", ForeignKey("services.id", ondelete="CASCADE"), primary_key=True),
    # --- integration: the staff member's own Cal.com event type for this service (a
    # personal event type, or a team one with them as the only host), so that Cal.com
    # cannot give the booking to a colleague; NULL: the service's. See core.event_types.
    db.Column("calcom_event_type_id", Integer, nullable=True),
    UniqueConstraint("calcom_event_type_id", name="uq_staff_services_calcom_event_type_id"),
)


class Staff(TimestampMixin, db.Model):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    calcom_user_id: Mapped[int | None] = mapped_column(Integer)
    calcom_username: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    branch: Mapped[Branch] = relationship(back_populates="staff")
    services: Mapped[list[Service]] = relationship(secondary=staff_services, back_populates="staff")

    def __repr__(self) -> str:
        return f"<Staff {self.id} {self.name}>"


class Service(TimestampMixin, db.Model):
    """Something a customer can book; a Cal.com event type on the other side.

    A regular service keeps staff busy for `duration_minutes`. A composite service is
    a sequence of `ServiceSegment`s, some of which are processing gaps during which
    the staff member is free for other customers.
    """

    __tablename__ = "services"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    calcom_event_type_id: Mapped[int | None] = mapped_column(Integer)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    price_cents: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[ServiceKind] = mapped_column(_enum(ServiceKind, "service_kind"), default=ServiceKind.REGULAR)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    company: Mapped[Company] = relationship(back_populates="services")
    segments: Mapped[list[ServiceSegment]] = relationship(
        back_populates="service", order_by="ServiceSegment.position", cascade="all, delete-orphan"
    )
    staff: Mapped[list[Staff]] = relationship(secondary=staff_services, back_populates="services")

    __table_args__ = (CheckConstraint("duration_minutes > 0", name="duration_positive"),)

    @property
    def busy_steps(self) -> list[ServiceSegment]:
        """The steps during which the staff member is busy, in order (empty for a
        regular service); `core.busy` turns them into intervals."""
        return [step for step in self.segments if step.staff_busy]

    def __repr__(self) -> str:
        return f"<Service {self.id} {self.name}>"


class ServiceSegment(db.Model):
    """One step of a composite service: work (staff busy) or a processing gap."""

    __tablename__ = "service_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200), default="")
    duration_minutes: Mapped[int] = mapped_column(Integer)
    staff_busy: Mapped[bool] = mapped_column(Boolean, default=True)
    # Cal.com event type used for this segment's booking; the service's when empty.
    calcom_event_type_id: Mapped[int | None] = mapped_column(Integer)

    service: Mapped[Service] = relationship(back_populates="segments")

    __table_args__ = (
        UniqueConstraint("service_id", "position", name="uq_service_segments_position"),
        CheckConstraint("duration_minutes > 0", name="duration_positive"),
    )


class Customer(TimestampMixin, db.Model):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))  # E.164
    email: Mapped[str | None] = mapped_column(String(254))

    __table_args__ = (Index("ix_customers_company_phone", "company_id", "phone"),)

    def __repr__(self) -> str:
        return f"<Customer {self.id}>"


class Appointment(TimestampMixin, db.Model):
    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"))
    branch_id: Mapped[int] = mapped_column(ForeignKey("branches.id"))
    service_id: Mapped[int] = mapped_column(ForeignKey("services.id"))
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)

    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[AppointmentStatus] = mapped_column(
        _enum(AppointmentStatus, "appointment_status"), default=AppointmentStatus.BOOKED
    )
    notes: Mapped[str | None] = mapped_column(Text)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancellation_reason: Mapped[str | None] = mapped_column(String(500))

    # --- the sync to Cal.com -------------------------------------------------------
    sync_status: Mapped[SyncStatus] = mapped_column(_enum(SyncStatus, "sync_status"), default=SyncStatus.PENDING)
    sync_action: Mapped[SyncAction] = mapped_column(_enum(SyncAction, "sync_action"), default=SyncAction.CREATE)
    # When the current sync action was asked for: the clock for "stale" and "ancient".
    sync_requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Bumped whenever a new sync is requested; a job carrying an older version is stale.
    sync_version: Mapped[int] = mapped_column(Integer, default=1)
    sync_attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_sync_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_sync_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sync_error_code: Mapped[str | None] = mapped_column(String(100))
    sync_error_message: Mapped[str | None] = mapped_column(Text)
    requires_manual_review: Mapped[bool] = mapped_column(Boolean, default=False)
    manual_review_reason: Mapped[str | None] = mapped_column(Text)
    calcom_booking_uid: Mapped[str | None] = mapped_column(String(100), index=True)
    calcom_booking_id: Mapped[int | None] = mapped_column(Integer)

    call_id: Mapped[str | None] = mapped_column(String(128))
    source: Mapped[AppointmentSource] = mapped_column(
        _enum(AppointmentSource, "appointment_source"), default=AppointmentSource.VOICE
    )

    company: Mapped[Company] = relationship()
    branch: Mapped[Branch] = relationship()
    service: Mapped[Service] = relationship()
    staff: Mapped[Staff] = relationship()
    customer: Mapped[Customer] = relationship()
    segments: Mapped[list[AppointmentSegment]] = relationship(
        back_populates="appointment", order_by="AppointmentSegment.position", cascade="all, delete-orphan"
    )
    sync_attempt_log: Mapped[list[SyncAttempt]] = relationship(
        back_populates="appointment", order_by="SyncAttempt.started_at", cascade="all, delete-orphan"
    )

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        # Monitoring counts: pending/failed by age, overall and per company.
        Index("ix_appointments_sync_status_requested", "sync_status", "sync_requested_at"),
        Index("ix_appointments_company_sync", "company_id", "sync_status", "sync_requested_at"),
        Index(
            "ix_appointments_manual_review",
            "company_id",
            postgresql_where=text("requires_manual_review"),
            # What SQLAlchemy writes for a bare boolean column on SQLite: a partial
            # index is used only when the query repeats its predicate (bench_0001).
            sqlite_where=text("requires_manual_review = 1"),
        ),
        Index("ix_appointments_branch_starts", "branch_id", "starts_at"),
        # Idempotent voice booking: one call books a given slot once.
        Index("ix_appointments_call_id", "call_id"),
    )

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    def __repr__(self) -> str:
        return f"<Appointment {self.id} {self.starts_at:%Y-%m-%d %H:%M} {self.sync_status.value}>"


class AppointmentSegment(db.Model):
    """An interval during which an appointment keeps a staff member busy.

    A regular appointment has one segment; a composite one has one per busy step.
    The overlap guard is on this table: in PostgreSQL an exclusion constraint refuses
    two active segments of the same staff whose `[starts_at, ends_at)` ranges
    intersect (touching intervals are fine). `staff_id` is copied from the
    appointment so the constraint needs no join.
    """

    __tablename__ = "appointment_segments"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    calcom_booking_uid: Mapped[str | None] = mapped_column(String(100), index=True)
    calcom_booking_id: Mapped[int | None] = mapped_column(Integer)
    # The Cal.com event type this segment is booked as.
    calcom_event_type_id: Mapped[int | None] = mapped_column(Integer)

    appointment: Mapped[Appointment] = relationship(back_populates="segments")

    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        # The overlap lookup: active segments of one staff member near a time.
        Index(
            "ix_appointment_segments_staff_active_start",
            "staff_id",
            "starts_at",
            postgresql_where=text("active"),
            sqlite_where=text("active = 1"),  # as a bare `active` renders there (bench_0001)
        ),
        ExcludeConstraint(
            ("staff_id", "="),
            (func.tstzrange(text("starts_at"), text("ends_at"), text("'[)'")), "&&"),
            name="ex_appointment_segments_no_overlap",
            using="gist",
            where=text("active"),
        ).ddl_if(dialect="postgresql"),
    )


class SyncAttempt(db.Model):
    """One try at carrying an appointment's change to Cal.com."""

    __tablename__ = "sync_attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    appointment_id: Mapped[int] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"))
    action: Mapped[SyncAction] = mapped_column(_enum(SyncAction, "sync_action"))
    attempt_number: Mapped[int] = mapped_column(Integer, default=1)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    outcome: Mapped[SyncOutcome | None] = mapped_column(_enum(SyncOutcome, "sync_outcome"))
    http_status: Mapped[int | None] = mapped_column(Integer)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    job_id: Mapped[str | None] = mapped_column(String(100))

    appointment: Mapped[Appointment] = relationship(back_populates="sync_attempt_log")

    __table_args__ = (
        Index("ix_sync_attempts_appointment_started", "appointment_id", "started_at"),
        # Success rates and failure reasons over a time window.
        Index("ix_sync_attempts_started_outcome", "started_at", "outcome"),
    )


class User(UserMixin, TimestampMixin, db.Model):
    """An operator of the dashboard."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(_enum(Role, "user_role"), default=Role.VIEWER)
    # An operator bound to a company sees only that company; None sees all.
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    company: Mapped[Company | None] = relationship()

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def can(self, role: Role) -> bool:
        """True when this user's role is at least `role`."""
        order = [Role.VIEWER, Role.OPERATOR, Role.ADMIN]
        return order.index(self.role) >= order.index(role)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.role.value}>"


class AuditEvent(db.Model):
    """Who did what to which appointment (retry, resolve, note, user changes)."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # A readable name of the actor: a user's email, "cli", "system", "calcom-webhook".
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    appointment_id: Mapped[int | None] = mapped_column(ForeignKey("appointments.id", ondelete="CASCADE"), index=True)
    note: Mapped[str | None] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    user: Mapped[User | None] = relationship()


class WebhookDelivery(db.Model):
    """A processed inbound webhook, remembered so that a replay changes nothing."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    # A key derived from the event (e.g. trigger + booking uid + payload digest).
    event_key: Mapped[str] = mapped_column(String(200))
    trigger: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    result: Mapped[str | None] = mapped_column(String(200))

    __table_args__ = (UniqueConstraint("source", "event_key", name="uq_webhook_deliveries_source_key"),)


# --- monitoring: what each notification channel was told about each alert ---


class AlertNotification(db.Model):
    """The last word one channel (log, slack, email, pagerduty) got about one alert.

    One row per (scope, alert kind, channel), kept and updated in place, so that the
    alert run every 15 minutes re-sends nothing the channel already knows: it sends on
    a new alert, on escalation, after the reminder interval, and "resolved" when the
    alert clears (see `monitoring.alerting`). A database row rather than a Redis key,
    so that an incident opened in PagerDuty is still resolved after Redis was flushed.
    """

    __tablename__ = "alert_notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    # "overall" or "company:<id>" (the scope the alert was computed for).
    scope: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(32))
    is_open: Mapped[bool] = mapped_column(Boolean, default=True)
    # The severity the channel knows (lowered silently when an alert de-escalates, so
    # that a new escalation is sent again).
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_sent_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (
        UniqueConstraint("scope", "kind", "channel", name="uq_alert_notifications_scope_kind_channel"),
        Index("ix_alert_notifications_open", "is_open"),
    )

    def __repr__(self) -> str:
        return f"<AlertNotification {self.scope} {self.kind} {self.channel} {'open' if self.is_open else 'resolved'}>"


# --- ops: drift reconciliation runs ---


class ReconciliationRun(db.Model):
    """One comparison of our appointments with Cal.com's bookings over a window.

    Written by `workers.reconcile` (nightly and `flask appointments reconcile`): how
    much drift of each kind it found, what it repaired, what it handed to a person,
    and what went wrong. The dashboard's trends page lists recent runs; the latest
    finished run feeds the `reconcile_drift` alert (`monitoring.rules`).
    """

    __tablename__ = "reconciliation_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    window_from: Mapped[datetime] = mapped_column(UTCDateTime())
    window_to: Mapped[datetime] = mapped_column(UTCDateTime())
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    # "cli" or "schedule".
    trigger: Mapped[str] = mapped_column(String(32), default="cli")
    # running | ok | errors (finished, but some event types could not be compared)
    status: Mapped[str] = mapped_column(String(16), default="running")
    event_types: Mapped[int] = mapped_column(Integer, default=0)
    bookings_seen: Mapped[int] = mapped_column(Integer, default=0)
    segments_seen: Mapped[int] = mapped_column(Integer, default=0)
    calcom_requests: Mapped[int] = mapped_column(Integer, default=0)
    drift_total: Mapped[int] = mapped_column(Integer, default=0)
    repaired: Mapped[int] = mapped_column(Integer, default=0)
    flagged: Mapped[int] = mapped_column(Integer, default=0)
    # {"missing_in_calcom": 2, "unknown_in_calcom": 1, …}
    counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The first findings: [{"kind", "handling", "appointment_id", "booking_uid", "message"}, …]
    findings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    errors: Mapped[list[Any]] = mapped_column(JSON, default=list)

    def __repr__(self) -> str:
        return f"<ReconciliationRun {self.id} {self.status} drift={self.drift_total}>"
