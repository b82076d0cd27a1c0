"""Log output: one line per event, JSON or text, ids attached, personal data masked.

`LOG_FORMAT=json` (the default in production) writes one JSON object per line:

    {"ts": "2026-12-07T08:00:00.123Z", "level": "INFO", "logger": "calcom.sync",
     "message": "sync appointment=12 …", "request_id": "…", "call_id": "call_…",
     "appointment_id": 12}

`LOG_FORMAT=text` (the default in development) writes the same as a readable line.
The ids come from `core.log_context`. `PiiMaskingFilter` sits on the handler, so no
line leaves the process with a phone number (E.164-like, `+49 151 …`) or an e-mail
address in it, whatever module wrote it — including exception texts. The masks are
`core.pii`'s, the same the dashboard shows viewers.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone

from core import log_context
from core.pii import mask_text

FORMATS = ("json", "text")

class PiiMaskingFilter(logging.Filter):
    """Rewrites a record's message (and exception text) with personal data masked."""

    _exception_formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to report
            return True
        masked = mask_text(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        return True


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, the exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(log_context.current())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """`2026-12-07 08:00:00,123 INFO calcom.sync [call=… appointment=12]: message`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = log_context.current()
        record.ids = (" [" + " ".join(f"{k.removesuffix('_id')}={v}" for k, v in ids.items()) + "]") if ids else ""
        return super().format(record)


def make_handler(log_format: str, stream=None) -> logging.Handler:
    if log_format not in FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(PiiMaskingFilter())
    handler._slotguard = True  # type: ignore[attr-defined]  # ours, replaced on reconfiguration
    return handler


def configure(log_format: str, level: str, *, stream=None) -> logging.Handler:
    """Send every log line through one masked handler on the root logger.

    Idempotent: a handler installed by an earlier call (another app in the same
    process, a test) is replaced, never doubled. Other handlers (pytest's capture)
    are left alone.
    """
    handler = make_handler(log_format, stream)
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_slotguard", False):
            root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # The sync pipeline logs here (workers, monitoring, client); operators filter on it.
    logging.getLogger("calcom").setLevel(level)
    return handler


__all__ = ["JsonFormatter", "PiiMaskingFilter", "TextFormatter", "configure", "make_handler"]
