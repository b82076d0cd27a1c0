"""Customers: the one way a booking finds its customer or creates one.

The voice agent (the caller's name and number) and the Cal.com webhook (a booking
made in Cal.com itself, with its attendee) both end up here, so one person is one
customer of the company whichever way they booked.

* Numbers are compared in E.164 (`core.phones`): "+49 151 …" from Cal.com and the
  caller's `+49151…` are the same person's number.
* Several customers may share one phone (a family). Among them the one whose name
  matches (after `normalise_name`) is taken. `other_name="create"` (the voice
  agent, which hears the name from the caller) then creates a new customer for a
  new name; `other_name="reuse"` (Cal.com, where "Erika M." is the same Erika
  Mustermann) takes the number's oldest customer.
* Otherwise an e-mail address finds the customer (for the voice agent only when the
  caller has no usable number: a new name on a known number is a new person).
* A known customer gains an e-mail address they did not have yet; nothing else of
  theirs is overwritten.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.models import Customer
from core.phones import to_e164

MAX_NAME = 200
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def normalise_name(text: str) -> str:
    """Lower case, umlauts spelled out, accents dropped, only letters and digits."""
    text = text.casefold().translate(_UMLAUTS)
    text = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


def find_or_create_customer(
    session: Session,
    company_id: int,
    *,
    name: str,
    phone: str | None,
    email: str | None = None,
    other_name: Literal["create", "reuse"] = "create",
) -> Customer:
    """The company's customer for this person, created (and flushed) when new."""
    number = to_e164(phone) if phone else None
    customer = _by_phone(session, company_id, number, name, other_name) if number else None
    if customer is None and email and (number is None or other_name == "reuse"):
        customer = session.scalar(select(Customer).where(
            Customer.company_id == company_id, func.lower(Customer.email) == email.lower()).order_by(Customer.id))
    if customer is None:
        customer = Customer(company_id=company_id, name=re.sub(r"\s+", " ", name).strip()[:MAX_NAME],
                            phone=number, email=email)
        session.add(customer)
        session.flush()
    elif email and not customer.email:
        customer.email = email
    return customer


def _by_phone(session: Session, company_id: int, number: str, name: str, other_name: str) -> Customer | None:
    sharing = list(session.scalars(
        select(Customer).where(Customer.company_id == company_id, Customer.phone == number).order_by(Customer.id)))
    wanted = normalise_name(name)
    same_name = next((c for c in sharing if normalise_name(c.name) == wanted), None)
    if same_name is not None or other_name == "create":
        return same_name
    return sharing[0] if sharing else None


__all__ = ["find_or_create_customer", "normalise_name"]
