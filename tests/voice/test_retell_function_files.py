"""The tool definitions operators paste into Retell (booking/retell_functions/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from booking.functions import FUNCTIONS
from booking.responses import FIELDS

FOLDER = Path(__file__).resolve().parents[2] / "booking" / "retell_functions"
WHEN = {"date", "time", "datetime"}
EXPECTED_ARGS = {
    "check_availability": {"service", "staff"} | WHEN,
    "start_booking": {"lock_key", "service", "staff", "customer_name", "customer_phone", "customer_email", "notes"}
    | WHEN,
    "find_appointments": set(),
    "cancel_appointment": {"appointment_id", "reason"} | WHEN,
    "reschedule_appointment": {"appointment_id", "new_date", "new_time", "new_datetime"} | WHEN,
}


def test_one_file_per_function():
    assert sorted(p.stem for p in FOLDER.glob("*.json")) == sorted(FUNCTIONS) == sorted(FIELDS)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_tool_definition_is_what_retell_expects(name):
    tool = json.loads((FOLDER / f"{name}.json").read_text(encoding="utf-8"))
    assert tool["type"] == "custom" and tool["name"] == name and tool["method"] == "POST"
    assert tool["url"].endswith(f"/retell/functions/{name}")
    assert tool["headers"] == {"X-Retell-Call-Id": "{{call_id}}"}
    assert tool["args_at_root"] is False
    assert 1000 <= tool["timeout_ms"] <= 600000
    parameters = tool["parameters"]
    assert parameters["type"] == "object"
    assert set(parameters["properties"]) == EXPECTED_ARGS[name]
    assert set(parameters["required"]) <= set(parameters["properties"])
    for prop in parameters["properties"].values():
        assert prop["type"] in {"string", "integer"} and prop["description"]
