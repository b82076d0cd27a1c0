"""Hold Cal.com requests inside the emulator until the test decides their fate.

A crash "before the Cal.com call" or "while the call is in flight" is chosen from
outside the worker: the emulator receives the create, and before it does anything
the request waits at this gate. Meanwhile the test kills the worker, then either
refuses the held request (Cal.com never acted on it: the connection died first) or
lets it proceed (Cal.com books, and answers 201 to nobody).

It uses the emulator's own hooks: a `latency` fault on the endpoint (rate 1) makes
the emulator call its `sleep` before handling the request, and the gate is that
`sleep`. Nothing in the worker is patched.
"""

from __future__ import annotations

import queue
import threading

from werkzeug.exceptions import ServiceUnavailable


class HeldRequest:
    """One request waiting at the gate."""

    def __init__(self) -> None:
        self._decided = threading.Event()
        self.proceeds = False

    def proceed(self) -> None:
        """Let Cal.com handle it (the booking is made; the answer goes to whoever is listening)."""
        self.proceeds = True
        self._decided.set()

    def refuse(self) -> None:
        """Cal.com never acts on it: answered 503 without doing anything (its caller is gone)."""
        self._decided.set()

    def wait(self, timeout: float) -> bool:
        return self._decided.wait(timeout)


class EmulatorGate:
    """Every request to `endpoint` ("create", "list", …) waits here for a verdict."""

    def __init__(self, handle, endpoint: str = "create", *, hold_seconds: float = 120) -> None:
        self.emulator = handle.emulator
        self.hold_seconds = hold_seconds
        self._arrived: queue.Queue[HeldRequest] = queue.Queue()
        self._open = threading.Event()
        self._previous_sleep = self.emulator.sleep
        self.emulator.sleep = self._hold
        self.emulator.set_faults({"rules": [{"kind": "latency", "latency_ms": 1, "endpoint": endpoint}]})

    def _hold(self, _seconds: float) -> None:
        if self._open.is_set():
            return
        held = HeldRequest()
        self._arrived.put(held)
        if not held.wait(self.hold_seconds) or not held.proceeds:
            raise ServiceUnavailable("held at the test's gate and refused: its caller was killed")

    def next_request(self, timeout: float = 60) -> HeldRequest:
        """The next request that reached the gate (waiting for one up to `timeout` s)."""
        try:
            return self._arrived.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no request reached the emulator's gate within {timeout:.0f} s") from None

    def open(self) -> None:
        """Let everything through from now on (held requests proceed), and stop gating."""
        self._open.set()
        while not self._arrived.empty():
            self._arrived.get_nowait().proceed()
        self.emulator.clear_faults()
        self.emulator.sleep = self._previous_sleep

    def __enter__(self) -> EmulatorGate:
        return self

    def __exit__(self, *exc) -> None:
        self.open()


__all__ = ["EmulatorGate", "HeldRequest"]
