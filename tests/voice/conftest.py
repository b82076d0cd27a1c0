"""Fixtures for the voice-function tests: a Cal.com stand-in on a free port, a small
world (one branch, two staff, a regular and a composite service), and `voice`, a
helper that posts signed Retell requests.

The clock is frozen at Monday 2026-12-07 09:00 in Berlin (08:00 UTC); tests ask for
Tuesday 2026-12-08 unless they are about something else.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from retell.lib.webhook_auth import symmetric

from booking.retell_signature import now_ms, sign as sign_bytes
from tests.calcom_fixtures import serve_wsgi
from tests.factories import make_world
from tests.voice_calcom_fake import FakeCalcom

RETELL_KEY = "retell_test_key"  # tests/conftest.py base_config
BRANCH_PHONE = "+4930111111"  # tests.factories.make_world
CALLER = "+4915112345678"


def berlin(year, month, day, hour, minute=0) -> datetime:
    """A Berlin wall-clock time as aware UTC (for assertions)."""
    from zoneinfo import ZoneInfo

    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo("Europe/Berlin")).astimezone(timezone.utc)


@pytest.fixture
def fake_calcom():
    fake = FakeCalcom()
    with serve_wsgi(fake) as url:
        fake.url = url
        yield fake
        fake.recover()


@pytest.fixture
def app_config(base_config, fake_calcom):
    return dict(base_config, CALCOM_API_URL=fake_calcom.url, CALCOM_AVAILABILITY_TIMEOUT=1.0,
                CALCOM_CONNECT_TIMEOUT=1.0, CALCOM_SYNC_TIMEOUT=2.0)


@pytest.fixture
def world(app, clock):
    return make_world(phone=BRANCH_PHONE)


class Voice:
    """Posts Retell custom-function requests the way Retell does (signed, wrapped)."""

    def __init__(self, client):
        self.client = client

    def body(self, name, args, *, call_id="call_A", from_number=CALLER, to_number=BRANCH_PHONE):
        call = {"call_type": "phone_call", "call_id": call_id, "agent_id": "agent_1", "agent_version": 1,
                "call_status": "ongoing", "direction": "inbound", "from_number": from_number, "to_number": to_number,
                "metadata": {}, "retell_llm_dynamic_variables": {}}
        if call_id is None:
            del call["call_id"]
        return json.dumps({"name": name, "call": call, "args": args or {}})

    def post(self, name, raw: str | bytes, *, headers=None, sign=True, timestamp=None):
        all_headers = {"Content-Type": "application/json"}
        if sign and isinstance(raw, bytes):  # maybe not even UTF-8: sign the bytes
            all_headers["X-Retell-Signature"] = sign_bytes(raw, RETELL_KEY, timestamp or now_ms())
        elif sign:  # as Retell does (the official SDK's signer)
            all_headers["X-Retell-Signature"] = symmetric["sign"](raw, RETELL_KEY, timestamp or now_ms())
        all_headers.update(headers or {})
        return self.client.post(f"/retell/functions/{name}", data=raw, headers=all_headers)

    def __call__(self, name, args=None, *, status=200, **call):
        response = self.post(name, self.body(name, args, **call))
        assert response.status_code == status, response.get_data(as_text=True)
        return response.get_json()


@pytest.fixture
def voice(client):
    return Voice(client)
