"""The emulator's webhook deliveries: signed POSTs in Cal.com's shape, off the request thread.

Cal.com sends webhooks after it has answered the API call, so the emulator queues
them and one background thread delivers them in order (one attempt each, like
Cal.com's `sendPayload`). `wait()` lets tests and the control API block until every
queued delivery is done, without sleeping.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections import deque
from datetime import datetime
from typing import Any, Callable

import requests

from calcom.emulator_state import WebhookEvent
from calcom.webhooks import (
    SIGNATURE_HEADER,
    VERSION_HEADER,
    WEBHOOK_VERSION,
    booking_payload,
    ping_payload,
    sign,
)
from core.clock import utcnow

log = logging.getLogger("calcom.emulator.webhooks")


class WebhookSender:
    def __init__(self, url: str | None = None, secret: str | None = None, *,
                 clock: Callable[[], datetime] = utcnow, timeout: float = 10.0, log_size: int = 500) -> None:
        self.url = url
        self.secret = secret
        self.clock = clock
        self.timeout = timeout
        self.deliveries: deque[dict[str, Any]] = deque(maxlen=log_size)
        self._queue: queue.Queue = queue.Queue()
        self._pending = 0
        self._idle = threading.Condition()
        self._session = requests.Session()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def configure(self, url: str | None, secret: str | None) -> None:
        self.url = url or None
        self.secret = secret or None

    def send(self, events: list[WebhookEvent]) -> None:
        """Queue one delivery per event (nothing when no URL is configured)."""
        for event in events:
            payload = booking_payload(event.trigger, booking=event.booking, event_type=event.event_type,
                                      organizer=event.organizer, attendees=event.attendees,
                                      created_at=self.clock(), previous=event.previous)
            self._enqueue(payload)

    def ping(self) -> None:
        self._enqueue(ping_payload(self.clock()))

    def _enqueue(self, payload: dict[str, Any]) -> None:
        if not self.url or self._stopped:
            return
        with self._idle:
            self._pending += 1
        self._queue.put((self.url, self.secret, payload))
        self._ensure_thread()

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery finished; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    def stop(self) -> None:
        self._stopped = True
        self._queue.put(None)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="calcom-emulator-webhooks", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            url, secret, payload = item
            try:
                self._deliver(url, secret, payload)
            finally:
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, url: str, secret: str | None, payload: dict[str, Any]) -> None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, secret),
                   VERSION_HEADER: WEBHOOK_VERSION}
        record: dict[str, Any] = {
            "trigger": payload["triggerEvent"], "uid": payload["payload"].get("uid"), "url": url,
            "at": self.clock().isoformat(), "status": None, "error": None,
        }
        try:
            response = self._session.post(url, data=body, headers=headers, timeout=self.timeout)
            record["status"] = response.status_code
            record["response"] = response.text[:300]
        except requests.RequestException as exc:
            record["error"] = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("webhook %s for %s to %s failed: %s", record["trigger"], record["uid"], url, exc)
        self.deliveries.append(record)


__all__ = ["WebhookSender"]
