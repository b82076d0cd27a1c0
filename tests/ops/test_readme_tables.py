"""The README's tables of voice error codes and scheduled jobs say what the code does."""

from __future__ import annotations

import os
import re

from core import PROJECT_ROOT
from core.config import Config
from workers.schedule import schedule_from_config


def read(*parts: str) -> str:
    with open(os.path.join(PROJECT_ROOT, *parts), encoding="utf-8") as handle:
        return handle.read()


def table_rows(text: str, header: str) -> list[list[str]]:
    """The rows of the Markdown table whose header line starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_every_voice_error_code_the_code_can_answer_is_in_the_readme_table():
    sources = "".join(read("booking", name) for name in os.listdir(os.path.join(PROJECT_ROOT, "booking"))
                      if name.endswith(".py"))
    codes = set(re.findall(r"CallerError\(\s*\"([a-z_]+)\"", sources))
    codes |= set(re.findall(r"^\s*\"([a-z_]+)\",\n\s*phrases\.", sources, re.MULTILINE))  # CallerError(\n "code",
    codes |= set(re.findall(r"\"error_code\": \"([a-z_]+)\"", sources))
    assert {"slot_taken", "lock_expired", "calendar_unavailable", "outside_hours", "internal_error"} <= codes
    documented = set()
    for row in table_rows(read("README.md"), "| `error_code` |"):
        documented |= set(re.findall(r"`([a-z_]+)`", row[0]))
    assert codes - documented == set()


def test_the_readme_lists_every_scheduled_job_with_its_default_schedule():
    jobs = {job.id: job for job in schedule_from_config(vars(Config()))}
    rows = {re.sub(r"`", "", row[0]): row for row in table_rows(read("README.md"), "| job id |")}
    assert set(rows) == set(jobs)
    for job_id, job in jobs.items():
        schedule, what = rows[job_id][1], rows[job_id][2]
        assert schedule.startswith(f"`{job.cron}`"), job_id
        assert f"`{job.func}`" in what, job_id
