"""Every German sentence the caller hears, in one place.

The agent reads `message` aloud (or paraphrases it), so sentences are short, polite
("Sie"), and carry the facts the caller needs: weekday, date and time as spoken
("Dienstag, 2. Dezember, um 10:30 Uhr"), the service and the staff member.
Nothing here decides anything; callers pass in what to say.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Sequence

from core.clock import to_local
from core.opening_hours import weekly_schedule


WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
MONTHS = (
    "Januar", "Februar", "März", "April", "Mai", "Juni",
    "Juli", "August", "September", "Oktober", "November", "Dezember",
)


# --- times as the caller hears them -----------------------------------------------------


def spoken_date(day: date) -> str:
    """`Dienstag, 2. Dezember`"""
    return f"{WEEKDAYS[day.weekday()]}, {day.day}. {MONTHS[day.month - 1]}"


def spoken_clock(moment: time | datetime) -> str:
    """`10:30 Uhr`, `9:00 Uhr`"""
    return f"{moment.hour}:{moment.minute:02d} Uhr"


def spoken_datetime(moment: datetime, tz_name: str) -> str:
    """`Dienstag, 2. Dezember, um 10:30 Uhr` for a UTC moment, in the branch's zone."""
    local = to_local(moment, tz_name)
    return f"{spoken_date(local.date())}, um {spoken_clock(local)}"


def spoken_list(items: Sequence[str], conjunction: str = "und") -> str:
    """`A`, `A und B`, `A, B und C`."""
    items = [item for item in items if item]
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


def spoken_starts(starts: Sequence[datetime], tz_name: str, *, day: date | None = None) -> list[str]:
    """Times to offer, in time order: `um 9:30 Uhr` on `day` (the day the caller
    asked about), `am Mittwoch, 9. Dezember, um 10:00 Uhr` on another day."""
    spoken = []
    for start in sorted(starts):
        local = to_local(start, tz_name)
        if day is not None and local.date() == day:
            spoken.append(f"um {spoken_clock(local)}")
        else:
            spoken.append(f"am {spoken_datetime(start, tz_name)}")
    return spoken


# --- availability -----------------------------------------------------------------


def slot_free(spoken_when: str, staff: str, held: bool) -> str:
    sentence = f"Am {spoken_when} ist bei {staff} ein Termin frei."
    if held:
        sentence += " Ich halte ihn kurz für Sie fest. Auf welchen Namen darf ich buchen?"
    else:
        sentence += " Auf welchen Namen darf ich buchen?"
    return sentence


def slot_not_free(spoken_when: str, alternatives: Sequence[str]) -> str:
    if alternatives:
        offers = spoken_list(alternatives, "oder")
        return f"Am {spoken_when} ist leider kein Termin frei. Ich kann Ihnen anbieten: {offers}."
    return no_alternatives(f"Am {spoken_when} ist leider kein Termin frei.")


def day_options(spoken_day: str, alternatives: Sequence[str]) -> str:
    """The caller named a day but no time."""
    if alternatives:
        offers = spoken_list(alternatives, "oder")
        return f"Für {spoken_day} kann ich Ihnen zum Beispiel anbieten: {offers}. Was passt Ihnen?"
    return no_alternatives(f"Am {spoken_day} ist leider nichts mehr frei.")


def no_alternatives(first_sentence: str) -> str:
    return f"{first_sentence} Auch in den folgenden Tagen habe ich leider keinen freien Termin gefunden."

CALENDAR_UNAVAILABLE = (
    "Ich kann den Kalender gerade nicht abrufen. "
    "Bitte versuchen Sie es in einem Moment noch einmal."
)


# --- booking ----------------------------------------------------------------------

LOCK_EXPIRED = "Ihre Reservierung ist abgelaufen. Bitte prüfen Sie erneut die Verfügbarkeit."

LOCK_MISMATCH = "Die Reservierung gilt für einen anderen Termin. Bitte prüfen Sie erneut die Verfügbarkeit."

INVALID_LOCK_KEY = "Die Reservierungsnummer ist ungültig. Bitte prüfen Sie erneut die Verfügbarkeit."


def slot_taken(alternatives: Sequence[str]) -> str:
    sentence = "Dieser Termin wurde gerade vergeben."
    if alternatives:
        return f"{sentence} Ich kann Ihnen anbieten: {spoken_list(alternatives, 'oder')}."
    return no_alternatives(sentence)


def booked(service: str, staff: str, spoken_when: str, name: str) -> str:
    return f"Vielen Dank, {name}. Ihr Termin ist gebucht: {service} bei {staff} am {spoken_when}."

BOOKING_FAILED = (
    "Ich konnte den Termin leider nicht im Kalender eintragen. "
    "Bitte versuchen Sie es in ein paar Minuten noch einmal."
)


# --- managing appointments ---------------------------------------------------------


def appointment_line(service: str, spoken_when: str, staff: str) -> str:
    return f"{service} am {spoken_when} bei {staff}"


def appointments_found(lines: Sequence[str]) -> str:
    if len(lines) == 1:
        return f"Ich habe einen Termin für Sie gefunden: {lines[0]}."
    return f"Ich habe {len(lines)} Termine für Sie gefunden: {spoken_list(lines)}."

NO_APPOINTMENTS = "Unter Ihrer Telefonnummer habe ich keinen anstehenden Termin gefunden."

APPOINTMENT_NOT_FOUND = (
    "Diesen Termin habe ich unter Ihrer Telefonnummer nicht gefunden. "
    "Wann war der Termin denn?"
)


def which_appointment(lines: Sequence[str]) -> str:
    return f"Sie haben mehrere Termine: {spoken_list(lines)}. Welchen meinen Sie?"


def cancelled(line: str) -> str:
    return f"Ihr Termin {line} ist storniert."


def already_cancelled(line: str) -> str:
    return f"Der Termin {line} war bereits storniert."

APPOINTMENT_IN_PAST = "Dieser Termin liegt bereits in der Vergangenheit und kann nicht mehr geändert werden."


def rescheduled(service: str, staff: str, spoken_when: str) -> str:
    return f"Ihr Termin ist verschoben: {service} bei {staff} am {spoken_when}."


def already_there(service: str, staff: str, spoken_when: str) -> str:
    return f"Ihr Termin {service} bei {staff} ist bereits am {spoken_when}."

CALLER_UNKNOWN = (
    "Ich kann Ihre Telefonnummer leider nicht erkennen. "
    "Unter welcher Nummer können wir Sie erreichen?"
)

CALLER_HIDDEN = (
    "Ihre Telefonnummer ist unterdrückt, deshalb kann ich Ihre Termine nicht aufrufen. "
    "Bitte rufen Sie mit der Nummer an, unter der Sie gebucht haben."
)


# --- arguments the caller has to give again ----------------------------------------


def unknown_service(said: str, offered: Sequence[str]) -> str:
    return f"Die Leistung {said} bieten wir leider nicht an. Möglich sind: {spoken_list(offered)}."


def which_service(candidates: Sequence[str]) -> str:
    return f"Meinen Sie {spoken_list(candidates, 'oder')}?"


def service_missing(offered: Sequence[str]) -> str:
    return f"Welche Leistung möchten Sie buchen? Möglich sind: {spoken_list(offered)}."


def unknown_staff(said: str, staff: Sequence[str]) -> str:
    if not staff:
        return f"{said} bietet diese Leistung leider nicht an."
    return f"{said} kann ich für diese Leistung leider nicht finden. Möglich sind: {spoken_list(staff)}."


def which_staff(candidates: Sequence[str]) -> str:
    return f"Meinen Sie {spoken_list(candidates, 'oder')}?"


def no_staff_for_service(service: str) -> str:
    return f"{service} bietet hier leider gerade niemand an."

DATE_NOT_UNDERSTOOD = "Das Datum habe ich leider nicht verstanden. An welchem Tag möchten Sie kommen?"

TIME_NOT_UNDERSTOOD = "Die Uhrzeit habe ich leider nicht verstanden. Um wie viel Uhr möchten Sie kommen?"

TIME_DOES_NOT_EXIST = (
    "Diese Uhrzeit gibt es an diesem Tag wegen der Zeitumstellung nicht. "
    "Bitte nennen Sie eine andere Uhrzeit."
)

IN_THE_PAST = (
    "Dieser Zeitpunkt liegt in der Vergangenheit. "
    "Bitte nennen Sie mir einen Termin in der Zukunft."
)


def too_far_ahead(days: int) -> str:
    months = max(1, round(days / 30))
    return f"So weit im Voraus kann ich leider noch nichts eintragen. Termine gibt es für die nächsten {months} Monate."


def opening_hours(hours) -> str:
    """`Montag bis Freitag von 9 bis 18 Uhr und Samstag von 9 bis 14:30 Uhr`
    (`Branch.opening_hours`, read by `core.opening_hours`)."""
    parts = []
    for first, last, ranges in weekly_schedule(hours):
        if first == last:
            days = WEEKDAYS[first]
        elif last == first + 1:
            days = f"{WEEKDAYS[first]} und {WEEKDAYS[last]}"
        else:
            days = f"{WEEKDAYS[first]} bis {WEEKDAYS[last]}"
        spoken = " und ".join(f"von {_hour(opens)} bis {_hour(closes)} Uhr" for opens, closes in ranges)
        parts.append(f"{days} {spoken}")
    return spoken_list(parts)


def _hour(hour_minute: tuple[int, int]) -> str:
    hour, minute = hour_minute
    return f"{hour}" if minute == 0 else f"{hour}:{minute:02d}"


def outside_hours(opening_hours: str, alternatives: Sequence[str]) -> str:
    sentence = "Zu dieser Zeit haben wir leider geschlossen."
    if opening_hours:
        sentence += f" Wir haben {opening_hours} geöffnet."
    if alternatives:
        sentence += f" Ich kann Ihnen anbieten: {spoken_list(alternatives, 'oder')}."
    return sentence


NAME_MISSING = "Auf welchen Namen darf ich den Termin eintragen?"

NAME_INVALID = "Den Namen habe ich leider nicht verstanden. Wie ist Ihr Name, bitte?"

PHONE_INVALID = (
    "Die Telefonnummer habe ich leider nicht verstanden. "
    "Unter welcher Nummer können wir Sie erreichen?"
)

EMAIL_INVALID = (
    "Die E-Mail-Adresse scheint nicht zu stimmen. "
    "Können Sie sie bitte noch einmal buchstabieren?"
)

NOTES_TOO_LONG = "Die Anmerkung ist leider zu lang. Können Sie sie kürzer fassen?"

ARGUMENT_INVALID = "Da ist leider etwas durcheinandergeraten. Können Sie mir das bitte noch einmal sagen?"

APPOINTMENT_REFERENCE_MISSING = "Um welchen Termin geht es? Nennen Sie mir bitte den Tag und die Uhrzeit."

NEW_TIME_MISSING = "Auf welchen Tag und welche Uhrzeit möchten Sie den Termin verschieben?"

# An unexpected error (HTTP 500): the agent still has a sentence to say.
TECHNICAL_ERROR = "Es ist ein technischer Fehler aufgetreten. Bitte versuchen Sie es gleich noch einmal."

BRANCH_UNKNOWN = (
    "Ich kann Ihre Anfrage gerade leider nicht bearbeiten. "
    "Bitte rufen Sie uns später noch einmal an."
)

# The agent named a branch that does not belong to the company the caller dialled.
BRANCH_NOT_OURS = (
    "Diese Filiale kann ich für Sie leider nicht verwalten. "
    "Bitte rufen Sie dort direkt an."
)
