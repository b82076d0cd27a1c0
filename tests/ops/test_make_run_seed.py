"""`make run` seeds the demo (and its login) only into a database without real data."""

from __future__ import annotations

import os
import re

from sqlalchemy import func, select

from core import PROJECT_ROOT
from core.extensions import db
from core.models import Appointment, Company
from core.seed import DEMO_SLUGS
from tests.factories import make_world


def test_seed_if_empty_leaves_a_database_with_real_data_alone(app, runner):
    make_world()  # a real company
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert result.exit_code == 1
    assert "not a demo database, so no demo data was added" in result.output
    assert db.session.scalar(select(func.count(Company.id)).where(Company.slug.in_(DEMO_SLUGS))) == 0
    assert db.session.scalar(select(func.count(Appointment.id))) == 0


def test_seed_if_empty_seeds_an_empty_database_once(app, runner):
    first = runner.invoke(args=["seed-demo", "--if-empty"])
    assert first.exit_code == 0 and "Created 2 demo companies" in first.output
    again = runner.invoke(args=["seed-demo", "--if-empty"])
    assert again.exit_code == 0 and "nothing changed" in again.output


def test_make_run_seeds_and_creates_the_demo_login_only_through_if_empty():
    with open(os.path.join(PROJECT_ROOT, "Makefile"), encoding="utf-8") as handle:
        makefile = handle.read()
    run = re.search(r"^run:.*?(?=^\S)", makefile, re.MULTILINE | re.DOTALL).group(0)
    assert "seed-demo --if-empty; then" in run
    assert re.findall(r"flask seed-demo[^\n]*", run) == ["flask seed-demo --if-empty; then \\"]
    # The demo admin is created inside the `then` branch only.
    then_branch = run.split("; then", 1)[1].split("else", 1)[0]
    assert "users create" in then_branch and "users create" not in run.split("; then", 1)[0]
