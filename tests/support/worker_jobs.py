"""Jobs the worker tests enqueue by dotted path (RQ imports them in the worker)."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from core.extensions import db
from core.models import Company


def leave_uncommitted_company(slug: str) -> str:
    """Add a row and return without committing: the worker must not let it leak."""
    db.session.add(Company(name="Leaked", slug=slug))
    db.session.flush()
    return current_app.name


def company_slugs() -> list[str]:
    """What a fresh session sees."""
    return sorted(db.session.scalars(select(Company.slug)))


def add_company(slug: str) -> int:
    company = Company(name="From a work horse", slug=slug)
    db.session.add(company)
    db.session.commit()
    return company.id
