"""Jinja filters that turn stored values into what an operator reads.

Times are stored in UTC; the dashboard shows an appointment in its branch's time
zone and everything else (attempts, audit events, "last updated") in `TZ_DEFAULT`,
always with the zone's abbreviation so nobody has to guess.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Flask, current_app
from markupsafe import Markup, escape

from core.clock import HUMAN_FORMAT, ensure_utc, format_local, utcnow
from dashboard import bp
from dashboard.appointment_queries import AgeLimits


def local_time(moment: datetime | str | None, tz_name: str | None = None, fmt: str = HUMAN_FORMAT) -> str:
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return format_local(moment, tz_name or current_app.config["TZ_DEFAULT"], fmt)


def age(moment: datetime | None) -> str:
    """How long ago, in the two largest units: "5 d 3 h ago", "12 min ago"."""
    if moment is None:
        return "—"
    seconds = int((utcnow() - ensure_utc(moment)).total_seconds())
    if seconds < 0:
        return "in the future"
    if seconds < 60:
        return "just now"
    return f"{span(timedelta(seconds=seconds))} ago"


def span(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def limit_text(delta: timedelta) -> str:
    """A configured limit in its natural unit: "60 min" is "1 h", "24 h" stays "24 h"."""
    seconds = int(delta.total_seconds())
    if seconds % 86400 == 0 and seconds >= 2 * 86400:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def inline_code(text: str | None) -> Markup:
    """Alert texts mark commands with backticks (they also go to Slack and email):
    show those as <code>, everything else escaped."""
    parts = str(escape(text or "")).split("`")
    if len(parts) % 2 == 0:  # an unpaired backtick: leave the text as it is
        return Markup("`".join(parts))
    return Markup("".join(f"<code>{part}</code>" if i % 2 else part for i, part in enumerate(parts)))


@bp.context_processor
def sync_age_limits() -> dict:
    """What `_sync_badges.html` needs to mark a row stale or ancient, as the list filters do."""
    limits = AgeLimits.from_settings()
    return {"now_utc": utcnow(), "stale_seconds": limits.stale_after.total_seconds(),
            "ancient_seconds": limits.ancient_after.total_seconds()}


def init_app(app: Flask) -> None:
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["age"] = age
    app.jinja_env.filters["inline_code"] = inline_code
