"""The Cal.com side of one sync attempt: make Cal.com match a `SyncPlan`, exactly once.

Jobs are delivered at least once and a worker can die after Cal.com answered, so
every step is safe to repeat:

* Every booking carries our appointment id (and segment number) in its metadata.
  Before creating after any earlier attempt, we list the bookings in the
  appointment's window and adopt one that carries our id instead of creating a
  second. A "slot taken" answer is checked the same way (it may be our own booking).
* A cancel of a booking that is already cancelled is success; if it was cancelled
  because it was rescheduled, we follow `rescheduledToUid` and cancel the live one.
* A reschedule first finds the live booking (following reschedules already applied);
  if it is already at the new time, that is success.
* Composite services: one booking per busy segment, then each is read back. If a
  segment cannot be booked (a refusal, or the last attempt failing) the bookings of
  the other segments are cancelled, so Cal.com never holds half an appointment.
"""

from __future__ import annotations

import logging
from typing import Callable

from calcom.client import Booking, CalcomClient
from calcom.errors import CalcomError, CalcomRequestError, SlotUnavailable
from calcom.metadata import appointment_id_from, booking_metadata, rollback_reason, segment_from
from core.models import SyncAction
from calcom.failures import Failure, classify
from workers.sync_records import CalcomOutcome, SyncPlan, Target

log = logging.getLogger("calcom.sync")

LIVE_STATUSES = ("accepted", "pending")
MAX_RESCHEDULE_HOPS = 10
MAX_LIST_PAGES = 20
PAGE_SIZE = 100


class LockLost(Exception):
    """Our appointment lock expired or was taken over: stop before calling Cal.com."""


def is_live(booking: Booking | None) -> bool:
    return booking is not None and str(booking.status).lower() in LIVE_STATUSES


def rescheduled_to(booking: Booking) -> str | None:
    """The booking this one was moved to (Cal.com cancels the old one on a reschedule)."""
    return booking.rescheduled_to_uid or None


class CalcomSync:
    """Carry out one plan with one Cal.com client."""

    def __init__(self, client: CalcomClient, plan: SyncPlan, keep_lock: Callable[[], bool]):
        self.client = client
        self.plan = plan
        self._keep_lock = keep_lock
        self._found: dict[int, Booking] | None = None

    # --- entry point ------------------------------------------------------------

    def run(self) -> CalcomOutcome:
        plan = self.plan
        try:
            if plan.action == SyncAction.CANCEL:
                return self.cancel()
            if plan.attendee is None:
                return CalcomOutcome(failure=Failure(
                    "invalid_attendee", f"Could not {self.doing()}: {plan.attendee_problem}. "
                    "Correct the customer's details, then retry the sync.", False))
            missing = [t for t in plan.targets if not t.event_type_id]
            if missing:
                return CalcomOutcome(failure=Failure(
                    "no_event_type", f"Could not {self.doing()}: the service has no Cal.com event type. "
                    "Set the service's event type id, then retry the sync.", False,
                    segment_index=missing[0].index))
            if plan.action == SyncAction.RESCHEDULE:
                return self.place(reschedule=True)
            return self.place(reschedule=False)
        except LockLost:
            return CalcomOutcome(failure=Failure(
                "lock_lost", f"Could not {self.doing()}: another worker took over this appointment.", True))

    # --- create / reschedule ----------------------------------------------------

    def place(self, *, reschedule: bool) -> CalcomOutcome:
        """Give every target segment a live booking at its time."""
        outcome = CalcomOutcome()
        for target in self.plan.move_order():
            try:
                booking = self._place_one(target, outcome, reschedule=reschedule)
            except LockLost:
                raise
            except Exception as error:  # noqa: BLE001 - every failure is recorded and decided on
                return self._failed(outcome, error, target)
            outcome.bookings[target.index] = booking
        if self.plan.composite:
            verified = self._verify(outcome)
            if verified is not None:
                return verified
        return outcome

    def _place_one(self, target: Target, outcome: CalcomOutcome, *, reschedule: bool) -> Booking:
        # 1. A booking already recorded for this very segment (an earlier attempt got through).
        if target.uid:
            live = self._follow(target.uid)
            if live is not None and live.start == target.starts_at:
                outcome.notes.append(f"{self._name(target)}kept booking {live.uid}")
                return live
        # 2. The booking a reschedule moves, or one an earlier attempt made unheard.
        source: Booking | None = None
        previous_uid = self.plan.previous_uids.get(target.index) if reschedule else None
        if previous_uid and not self.plan.check_calcom_first:
            # First try: move it straight away; Cal.com tells us if that is impossible.
            try:
                return self._call(self.client.reschedule_booking, previous_uid, target.starts_at,
                                  self._reschedule_reason())
            except CalcomRequestError as error:
                if "cancel" not in (error.message or "").lower():
                    raise
                # Moved or cancelled already (by an earlier attempt or in Cal.com): find the live one.
            source = self._follow(previous_uid)
        elif previous_uid:
            source = self._follow(previous_uid)
        if source is None and self.plan.check_calcom_first:
            source = self._find_ours().get(target.index)
        if source is not None:
            if source.start == target.starts_at:
                outcome.notes.append(f"{self._name(target)}adopted booking {source.uid} already in Cal.com")
                return source
            return self._call(self.client.reschedule_booking, source.uid, target.starts_at,
                              self._reschedule_reason())
        # 3. Nothing in Cal.com: book it.
        return self._create(target, outcome)

    def _create(self, target: Target, outcome: CalcomOutcome) -> Booking:
        metadata = booking_metadata(self.plan.appointment_id, target.index if self.plan.composite else None)
        length = round((target.ends_at - target.starts_at).total_seconds() / 60) if self.plan.composite else None
        try:
            booking = self._call(self.client.create_booking, event_type_id=target.event_type_id,
                                 start=target.starts_at, attendee=self.plan.attendee, length_minutes=length,
                                 metadata=metadata)
            self._check_host(booking, target, outcome)
            return booking
        except SlotUnavailable:
            # The booking in the way may be our own (a duplicate job, an answer we never got).
            self._found = None
            ours = self._find_ours().get(target.index)
            if ours is not None and ours.start == target.starts_at:
                outcome.notes.append(f"{self._name(target)}adopted booking {ours.uid} (Cal.com said the slot "
                                     "was taken: by our own booking)")
                return ours
            raise

    def _check_host(self, booking: Booking, target: Target, outcome: CalcomOutcome) -> None:
        """Cal.com picks the host of a team event type itself; say so when it is not our staff member."""
        host_ids = [h.get("id") for h in booking.hosts if isinstance(h, dict)]
        if self.plan.host_user_id is None or not host_ids or self.plan.host_user_id in host_ids:
            return
        note = (f"{self._name(target)}Cal.com gave booking {booking.uid} to host {', '.join(map(str, host_ids))}, "
                f"not to the staff member's Cal.com user {self.plan.host_user_id}")
        outcome.notes.append(note)
        log.warning("sync appointment=%s %s", self.plan.appointment_id, note)

    def _verify(self, outcome: CalcomOutcome) -> CalcomOutcome | None:
        """Read every segment's booking back: it must be live at its time."""
        for target in self.plan.targets:
            booking = outcome.bookings[target.index]
            try:
                fetched = self._call(self.client.get_booking, booking.uid)
            except LockLost:
                raise
            except Exception as error:  # noqa: BLE001
                return self._failed(outcome, error, target, verifying=True)
            if not is_live(fetched) or fetched.start != target.starts_at:
                failure = Failure(
                    "verification_failed",
                    f"Could not {self.doing()}: {target.label} was booked ({booking.uid}) but reading it back "
                    f"from Cal.com shows status {fetched.status!r} at {fetched.start.isoformat()}.",
                    False, None, None, target.index)
                return self._give_up(outcome, failure)
        return None

    def _failed(self, outcome: CalcomOutcome, error: Exception, target: Target, *,
                verifying: bool = False) -> CalcomOutcome:
        if isinstance(error, LockLost):
            raise error
        if not isinstance(error, CalcomError):
            log.exception("appointment=%s unexpected error during sync", self.plan.appointment_id)
        doing = self.doing(target, verifying=verifying)
        failure = classify(error, doing=doing, event_type_id=target.event_type_id, segment_index=target.index)
        if failure.retryable and self.plan.is_last_attempt and not self.plan.composite \
                and self.plan.action == SyncAction.CREATE:
            # Last chance: the create may have gone through unheard (timeout, dropped answer).
            try:
                self._found = None
                ours = self._find_ours().get(target.index)
            except CalcomError:
                ours = None
            if ours is not None and ours.start == target.starts_at:
                outcome.bookings[target.index] = ours
                outcome.notes.append(f"adopted booking {ours.uid} after: {failure.reason}")
                return outcome
        if self.plan.composite and (not failure.retryable or self.plan.is_last_attempt):
            return self._give_up(outcome, failure)
        outcome.failure = failure
        return outcome

    def _give_up(self, outcome: CalcomOutcome, failure: Failure) -> CalcomOutcome:
        """A composite appointment cannot be placed whole: cancel what was placed."""
        cancelled, problems = self._cancel_everything(extra=[b.uid for b in outcome.bookings.values()])
        outcome.bookings.clear()
        outcome.cancelled_uids |= cancelled
        outcome.rolled_back = True
        if problems:
            tail = (" Slotguard could not cancel the other segments' bookings in Cal.com: "
                    + "; ".join(problems) + ". Cancel them in Cal.com by hand.")
        elif cancelled:
            tail = f" The other segments' bookings were cancelled in Cal.com ({', '.join(sorted(cancelled))})."
        else:
            tail = " No other segment had been booked."
        # No retry follows a rollback. A transient failure only gets here on the last
        # attempt, and stays retryable so the result says so: `retries_exhausted`,
        # "Gave up after n attempts", like any sync whose attempts ran out.
        still_retryable = failure.retryable and self.plan.is_last_attempt
        outcome.failure = Failure(failure.code, failure.reason + tail, still_retryable, failure.http_status,
                                  failure.retry_after, failure.segment_index)
        return outcome

    # --- cancel -----------------------------------------------------------------

    def cancel(self) -> CalcomOutcome:
        outcome = CalcomOutcome()
        if not self.plan.all_uids and not self.plan.check_calcom_first:
            outcome.notes.append("never reached Cal.com; nothing to cancel")
            return outcome
        try:
            cancelled, problems = self._cancel_everything(raise_errors=True)
        except LockLost:
            raise
        except Exception as error:  # noqa: BLE001
            if not isinstance(error, CalcomError):
                log.exception("appointment=%s unexpected error during cancel", self.plan.appointment_id)
            outcome.failure = classify(error, doing=self.doing())
            return outcome
        outcome.cancelled_uids |= cancelled
        if not cancelled:
            outcome.notes.append("no live booking in Cal.com; nothing to cancel")
        return outcome

    def _cancel_everything(self, extra: list[str] = (), raise_errors: bool = False) -> tuple[set[str], list[str]]:
        """Cancel every live booking of the appointment: known uids (following
        reschedules to the live booking) and, after earlier attempts, those found by
        metadata. Returns (uids cancelled, problems)."""
        handled: set[str] = set()
        cancelled: set[str] = set()
        problems: list[str] = []
        uids = list(dict.fromkeys([*extra, *self.plan.all_uids]))

        def attempt(uid: str) -> None:
            try:
                self._cancel_chain(uid, handled, cancelled)
            except LockLost:
                raise
            except Exception as error:  # noqa: BLE001
                if raise_errors:
                    raise
                problems.append(f"booking {uid}: {error}")

        for uid in uids:
            attempt(uid)
        if self.plan.check_calcom_first or not uids:
            try:
                self._found = None
                found = self._find_ours()
            except CalcomError as error:
                if raise_errors:
                    raise
                problems.append(f"looking for bookings to cancel failed: {error}")
                found = {}
            for booking in found.values():
                attempt(booking.uid)
        return cancelled, problems

    def _cancel_chain(self, uid: str, handled: set[str], cancelled: set[str]) -> None:
        for _ in range(MAX_RESCHEDULE_HOPS):
            if uid in handled:
                return
            handled.add(uid)
            try:
                result = self._call(self.client.cancel_booking, uid, self._cancel_reason())
            except CalcomRequestError as error:
                message = (error.message or "").lower()
                if error.status == 404:
                    return  # nothing there to cancel
                if "already" not in message or "cancel" not in message:
                    raise
                result = None
            if result is not None and not rescheduled_to(result) and str(result.status).lower() == "cancelled":
                cancelled.add(uid)
                return
            # Already cancelled before (or no body): was it moved to a booking that is still live?
            booking = self._get(uid)
            if booking is None:
                return
            successor = rescheduled_to(booking)
            if not successor:
                if result is not None:
                    cancelled.add(uid)
                return
            uid = successor

    # --- finding our bookings ---------------------------------------------------

    def _follow(self, uid: str) -> Booking | None:
        """The live booking `uid` became (itself, or where reschedules led); None if cancelled."""
        for _ in range(MAX_RESCHEDULE_HOPS):
            booking = self._get(uid)
            if booking is None:
                return None
            if is_live(booking):
                return booking
            successor = rescheduled_to(booking)
            if not successor:
                return None
            uid = successor
        return None

    def _get(self, uid: str) -> Booking | None:
        try:
            return self._call(self.client.get_booking, uid)
        except CalcomRequestError as error:
            if error.status == 404:
                return None
            raise

    def _find_ours(self) -> dict[int, Booking]:
        """Live bookings carrying our appointment id, by segment index.

        Listed per event type over the appointment's whole window and matched by
        metadata, not by attendee: the customer's details may have been corrected
        since the booking was made, the metadata cannot have changed.
        """
        if self._found is not None:
            return self._found
        plan = self.plan
        found: dict[int, Booking] = {}
        targets = {t.index: t for t in plan.targets}
        for event_type_id in plan.event_type_ids:
            skip = 0
            for _ in range(MAX_LIST_PAGES):
                page = self._call(self.client.list_bookings, event_type_id=event_type_id,
                                  after_start=plan.search_from, before_end=plan.search_to, take=PAGE_SIZE,
                                  skip=skip)
                for booking in page.items:
                    if appointment_id_from(booking.metadata) != plan.appointment_id or not is_live(booking):
                        continue
                    index = segment_from(booking.metadata) or 0
                    target = targets.get(index)
                    best = found.get(index)
                    if best is None or (target is not None and booking.start == target.starts_at):
                        found[index] = booking
                if not page.has_more or not page.items:
                    break
                skip += len(page.items)
        self._found = found
        return found

    # --- helpers ----------------------------------------------------------------

    def _call(self, method, *args, **kwargs):
        if not self._keep_lock():
            raise LockLost()
        return method(*args, **kwargs)

    def doing(self, target: Target | None = None, *, verifying: bool = False) -> str:
        verb = {SyncAction.CREATE: "book", SyncAction.RESCHEDULE: "move", SyncAction.CANCEL: "cancel"}[
            self.plan.action]
        if verifying:
            verb = "confirm the booking of"
        part = f"{target.label} of " if target is not None and target.label else ""
        return f"{verb} {part}{self.plan.what} in Cal.com"

    def _name(self, target: Target) -> str:
        return f"{target.label}: " if target.label else ""

    def _reschedule_reason(self) -> str:
        return "Moved by the customer (Slotguard)"

    def _cancel_reason(self) -> str:
        reason = (self.plan.cancellation_reason or "").strip()
        if self.plan.action != SyncAction.CANCEL:
            # Recognisable in the BOOKING_CANCELLED webhook: our own undo, not a cancellation
            # of the appointment (see README, "Sync to Cal.com").
            return rollback_reason(self.plan.appointment_id)
        return f"Slotguard: {reason}"[:500] if reason else "Cancelled by the customer (Slotguard)"


def carry_out(client: CalcomClient, plan: SyncPlan, keep_lock: Callable[[], bool]) -> CalcomOutcome:
    """Make Cal.com match `plan`; never raises for Cal.com failures (they are in the outcome)."""
    return CalcomSync(client, plan, keep_lock).run()


__all__ = ["CalcomSync", "LockLost", "carry_out"]
