"""Is a slot free? Only when Cal.com, the local database and the holds all agree.

1. Cal.com offers it: every busy interval lies inside the ranges Cal.com offers for
   that staff member and event type (`calcom_slots`, cached briefly). The event type
   is `core.event_types.event_type_for`'s: the staff member's own event type when one
   is mapped (asked as it is: it has one host), else the service's team event type
   asked about that host (`rrHostSubsetIds`).
2. No active local appointment segment of that staff member overlaps it — whatever
   its sync state. An appointment whose sync is pending or failed is invisible to
   Cal.com (the Siebert case: pending for five days, Cal.com says free), so the
   local database is asked every time, never the cache.
3. No other call holds an overlapping interval in Redis (`holds`).

Composite services check each busy step; the processing gaps stay free for others.

Cost of the local part: one query for the staff members' own event types, one
indexed query for their active segments in the day
(`ix_appointment_segments_staff_active_start`) and one Redis round trip (the
hold script tries every suitable staff member at once). Alternatives, only when the
wanted slot is not free, add one query and one MGET for the following days.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from booking.calcom_slots import CalcomSlots, CalendarUnavailable, Ranges, SlotQuery
from booking.holds import HoldsUnavailable, SlotHolds, cell_keys, lock_key_for
from core.booking_guard import MAX_SEGMENT, Interval
from core.busy import busy_for
from core.clock import local_day_bounds, to_local
from core.event_types import event_type_for, personal_event_types
from core.models import Appointment, AppointmentSegment, Branch, Service, Staff
from core.opening_hours import is_open, open_intervals

logger = logging.getLogger(__name__)

MAX_ALTERNATIVES = 3
# How many following days are searched for alternatives.
ALTERNATIVE_DAYS = 7
# Grid for services that have no Cal.com event type (local calendar only).
LOCAL_GRID = timedelta(minutes=15)


@dataclass(frozen=True)
class SlotOption:
    staff_id: int
    staff_name: str
    start: datetime
    end: datetime
    busy: tuple[Interval, ...]


@dataclass
class Availability:
    available: bool
    slot: SlotOption | None = None
    lock_key: str | None = None
    alternatives: list[SlotOption] = field(default_factory=list)


@dataclass
class Checker:
    """Everything one availability question needs, gathered once per request."""

    session: Session
    branch: Branch
    service: Service
    staff: list[Staff]  # candidates in order of preference (one when the caller chose)
    slots: CalcomSlots
    holds: SlotHolds | None  # None: slot locking is off
    owner: str | None  # the call id; holds are taken only with one
    now: datetime
    # When moving an appointment: its own segments do not block it.
    moving: Appointment | None = None

    # Staff id → their own Cal.com event type for the service (loaded on first use).
    personal: dict[int, int] | None = None

    _calendar: dict[SlotQuery, dict[date, Ranges]] = field(default_factory=dict)
    # free_ranges per (staff id, event type, day), merged once: the alternatives ask
    # the same day for every candidate start (emptied whenever days are loaded).
    _free: dict[tuple[int, int, date], Ranges] = field(default_factory=dict)
    _local: dict[int, list[tuple[datetime, datetime]]] = field(default_factory=dict)
    _known_days: set[date] = field(default_factory=set)

    # --- the question -----------------------------------------------------------

    def check(self, start: datetime) -> Availability:
        """Is `start` free for the service with any candidate staff member?

        Free → hold it for the caller (when locking is on) and return the slot and
        lock key. Not free → up to three alternatives. Raises `CalendarUnavailable`
        when Cal.com cannot answer for the wanted day.
        """
        day = self.local_day(start)
        self.load_days([day])
        options = [self.option(member, start) for member in self.preferred_staff(day)]
        options = [option for option in options if option is not None and self.fits(option)]
        if options:
            held = self.hold_first(options)
            if held is not None:
                return Availability(True, slot=held[0], lock_key=held[1])
        return Availability(False, alternatives=self.alternatives(day, near=start))

    def nearest(self, start: datetime) -> list[SlotOption]:
        """Up to three free slots nearest to `start` (e.g. when it is outside opening hours)."""
        day = self.local_day(start)
        self.load_days([day])
        return self.alternatives(day, near=start)

    def day_overview(self, day: date) -> list[SlotOption]:
        """The earliest free slots of a day (and the days after), for "when is it free?"."""
        self.load_days([day])
        return self.alternatives(day, near=None)

    # --- building blocks --------------------------------------------------------

    def local_day(self, moment: datetime) -> date:
        return to_local(moment, self.branch.timezone).date()

    def busy_for(self, member: Staff, start: datetime) -> list[Interval]:
        """The busy intervals, each with the event type it is asked and booked as for `member`."""
        return busy_for(self.session, self.service, member, start, personal=self.own_event_types())

    def own_event_types(self) -> dict[int, int]:
        if self.personal is None:
            self.personal = personal_event_types(self.session, self.service.id, [m.id for m in self.staff])
        return self.personal

    def event_type(self, member: Staff, step: Interval | None = None) -> int | None:
        return event_type_for(self.session, self.service, member, step, personal=self.own_event_types())

    def slot_query(self, member: Staff, event_type_id: int) -> SlotQuery:
        """The staff member's own event type has one host; a team one is asked about them."""
        own = self.own_event_types().get(member.id) == event_type_id
        return SlotQuery(event_type_id, None if own else member.calcom_user_id)

    def option(self, member: Staff, start: datetime) -> SlotOption | None:
        end = start + timedelta(minutes=self.service.duration_minutes)
        if start <= self.now or not is_open(self.branch.opening_hours, self.branch.timezone, start, end):
            return None
        return SlotOption(member.id, member.name, start, end, tuple(self.busy_for(member, start)))

    def fits(self, option: SlotOption) -> bool:
        """Cal.com offers every busy interval and no local segment overlaps it."""
        return self.calendar_offers(option) and not self.locally_busy(option)

    def calendar_offers(self, option: SlotOption) -> bool:
        member = self.staff_by_id(option.staff_id)
        for interval in option.busy:
            event_type_id = interval.calcom_event_type_id  # already this member's (busy_for)
            if event_type_id is None:
                continue  # not a Cal.com service: the local calendar alone decides
            ranges = self.free_ranges(member, event_type_id, self.local_day(interval.starts_at))
            if not _covered(interval.starts_at, interval.ends_at, ranges):
                return False
        return True

    def locally_busy(self, option: SlotOption) -> bool:
        segments = self._local.get(option.staff_id, [])
        return any(s < i.ends_at and i.starts_at < e for s, e in segments for i in option.busy)

    def free_ranges(self, member: Staff, event_type_id: int, day: date) -> Ranges:
        """Cal.com's offered ranges (merged); a moving appointment's own time counts as free."""
        key = (member.id, event_type_id, day)
        merged = self._free.get(key)
        if merged is None:
            ranges = list(self._calendar.get(self.slot_query(member, event_type_id), {}).get(day, []))
            if self.moving is not None and self.moving.staff_id == member.id and self._moving_in_calcom():
                ranges += [(s.starts_at, s.ends_at) for s in self.moving.segments if s.active]
            merged = self._free[key] = _merge(ranges)
        return merged

    def _moving_in_calcom(self) -> bool:
        moving = self.moving
        return bool(moving.calcom_booking_uid or any(s.calcom_booking_uid for s in moving.segments))

    def staff_by_id(self, staff_id: int) -> Staff:
        return next(member for member in self.staff if member.id == staff_id)

    def preferred_staff(self, day: date) -> list[Staff]:
        """Least busy that day first (spreads the work), then by id."""
        day_start, day_end = local_day_bounds(day, self.branch.timezone)

        def busy_minutes(member: Staff) -> float:
            return sum(
                (min(e, day_end) - max(s, day_start)).total_seconds()
                for s, e in self._local.get(member.id, [])
                if s < day_end and e > day_start
            )

        return sorted(self.staff, key=lambda member: (busy_minutes(member), member.id))

    # --- loading ----------------------------------------------------------------

    def load_days(self, days: Iterable[date]) -> None:
        """Fetch Cal.com's offers and the local segments for days not loaded yet."""
        days = sorted(set(days) - self._known_days)
        if not days:
            return
        queries = self.slot_queries()
        if queries:
            for query, per_day in self.slots.offered(queries, days).items():
                self._calendar.setdefault(query, {}).update(per_day)
            self._free.clear()
        start, _ = local_day_bounds(days[0], self.branch.timezone)
        _, end = local_day_bounds(days[-1], self.branch.timezone)
        for staff_id, segments in load_segments(
            self.session, [m.id for m in self.staff], start, end,
            ignore_appointment_id=self.moving.id if self.moving else None,
        ).items():
            known = self._local.setdefault(staff_id, [])
            known.extend(s for s in segments if s not in known)
        self._known_days.update(days)

    def slot_queries(self) -> list[SlotQuery]:
        queries = []
        for member in self.staff:
            event_types = {interval.calcom_event_type_id for interval in self.busy_for(member, self.now)}
            event_types.discard(None)
            queries += [self.slot_query(member, event_type_id) for event_type_id in sorted(event_types)]
        return queries

    # --- holds ------------------------------------------------------------------

    def hold_first(self, options: Sequence[SlotOption]) -> tuple[SlotOption, str | None] | None:
        """Hold the first option no other call holds; None when all are held.

        Without holds (locking off, no call id, Redis down) the first option is
        returned without a lock key: the database guard still protects the booking.
        """
        if self.holds is None or not self.owner:
            return options[0], None
        try:
            index = self.holds.acquire_first(self.owner, [cell_keys(o.staff_id, o.busy) for o in options])
        except HoldsUnavailable as exc:
            logger.warning("slot holds unavailable, answering without a hold: %s", exc)
            return options[0], None
        if index is None:
            return None
        chosen = options[index]
        return chosen, lock_key_for(chosen.staff_id, self.service.id, chosen.start)

    def without_foreign_holds(self, options: Sequence[SlotOption]) -> list[SlotOption]:
        if self.holds is None or not options:
            return list(options)
        cells = {option: cell_keys(option.staff_id, option.busy) for option in options}
        try:
            taken = self.holds.held_by_others(self.owner or "", sorted({k for keys in cells.values() for k in keys}))
        except HoldsUnavailable:
            return list(options)
        return [option for option in options if not taken.intersection(cells[option])]

    # --- alternatives -------------------------------------------------------------

    def candidates(self, day: date) -> list[SlotOption]:
        """Every free (per Cal.com and the database) start of `day`, all candidate staff."""
        found = []
        for member in self.staff:
            for start in self.candidate_starts(member, day):
                option = self.option(member, start)
                if option is not None and self.fits(option):
                    found.append(option)
        return found

    def candidate_starts(self, member: Staff, day: date) -> list[datetime]:
        event_type_id = self.event_type(member)
        if event_type_id is not None:
            offered = self._calendar.get(self.slot_query(member, event_type_id), {}).get(day, [])
            return sorted({start for start, _ in offered})
        starts = []
        for opens, closes in open_intervals(self.branch.opening_hours, day, self.branch.timezone):
            cursor = opens
            while cursor < closes:
                starts.append(cursor)
                cursor += LOCAL_GRID
        return starts

    def alternatives(self, day: date, *, near: datetime | None) -> list[SlotOption]:
        """Up to three free slots: the nearest ones that day, then the following days."""
        same_day = [o for o in self.candidates(day) if near is None or o.start != near]
        if near is not None:
            same_day.sort(key=lambda o: (abs((o.start - near).total_seconds()), o.start))
        else:
            same_day.sort(key=lambda o: o.start)
        chosen = self.pick(same_day, [])
        if len(chosen) < MAX_ALTERNATIVES:
            later_days = [day + timedelta(days=n) for n in range(1, ALTERNATIVE_DAYS + 1)]
            try:
                self.load_days(later_days)
            except CalendarUnavailable:
                logger.info("no alternatives from later days: Cal.com unavailable")
                return chosen
            # Day by day, in time order (the same order as sorting them all at once),
            # and no further than needed: most answers are found the next day.
            for later_day in later_days:
                later = sorted(self.candidates(later_day), key=lambda o: (o.start, o.staff_id))
                chosen = self.pick(later, chosen)
                if len(chosen) >= MAX_ALTERNATIVES:
                    break
        return chosen

    def pick(self, ordered: list[SlotOption], chosen: list[SlotOption]) -> list[SlotOption]:
        """Take options in order, one per start time, skipping those another call holds."""
        chosen = list(chosen)
        batch_size = MAX_ALTERNATIVES * 4
        position = 0
        while len(chosen) < MAX_ALTERNATIVES and position < len(ordered):
            batch = [o for o in ordered[position:position + batch_size] if o.start not in {c.start for c in chosen}]
            position += batch_size
            for option in self.without_foreign_holds(batch):
                if len(chosen) < MAX_ALTERNATIVES and option.start not in {c.start for c in chosen}:
                    chosen.append(option)
        return chosen


def load_segments(
    session: Session,
    staff_ids: Sequence[int],
    start: datetime,
    end: datetime,
    *,
    ignore_appointment_id: int | None = None,
) -> dict[int, list[tuple[datetime, datetime]]]:
    """Active segments of these staff members overlapping [start, end) — one query on
    the partial index (staff_id, starts_at) WHERE active, bounded below by the longest
    possible segment so the scan stays inside the window."""
    if not staff_ids:
        return {}
    query = select(
        AppointmentSegment.staff_id, AppointmentSegment.starts_at, AppointmentSegment.ends_at
    ).where(
        AppointmentSegment.staff_id.in_(list(staff_ids)),
        # The bare column: PostgreSQL and SQLite use a partial index only when the query
        # repeats its predicate (`active`; SQLite: `active = 1`); `IS true` scans the table.
        AppointmentSegment.active,
        AppointmentSegment.starts_at < end,
        AppointmentSegment.starts_at > start - MAX_SEGMENT,
        AppointmentSegment.ends_at > start,
    )
    if ignore_appointment_id is not None:
        query = query.where(AppointmentSegment.appointment_id != ignore_appointment_id)
    found: dict[int, list[tuple[datetime, datetime]]] = defaultdict(list)
    for staff_id, seg_start, seg_end in session.execute(query):
        found[staff_id].append((seg_start, seg_end))
    return found


def _merge(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _covered(start: datetime, end: datetime, merged: Ranges) -> bool:
    return any(s <= start and end <= e for s, e in merged)


__all__ = ["Availability", "Checker", "SlotOption", "CalendarUnavailable", "load_segments", "MAX_ALTERNATIVES"]
