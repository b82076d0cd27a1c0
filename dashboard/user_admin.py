"""User management for admins: create users, change roles, deactivate and reactivate.

An admin bound to a company manages only that company's users and can only create
users bound to it; an unbound admin manages everyone. Nobody can demote or
deactivate themselves (the last admin must not lock everyone out by a mis-click).
Every change is written to the audit log.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from core.accounts import AccountError, create_user
from core.models import AuditEvent, Company, Role, User


def manageable_users(session: Session, admin: User) -> list[User]:
    query = select(User).options(joinedload(User.company)).order_by(User.email)
    if admin.company_id is not None:
        query = query.where(User.company_id == admin.company_id)
    return list(session.scalars(query))


def assignable_companies(session: Session, admin: User) -> list[Company]:
    query = select(Company).order_by(Company.name)
    if admin.company_id is not None:
        query = query.where(Company.id == admin.company_id)
    return list(session.scalars(query))


def _managed_user(session: Session, admin: User, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or (admin.company_id is not None and user.company_id != admin.company_id):
        raise LookupError("no such user")
    return user


def _audit(session: Session, admin: User, action: str, user: User, **details) -> None:
    session.add(AuditEvent(actor=admin.email, user_id=admin.id, action=action,
                           details={"user_id": user.id, "email": user.email, **details}))


def add_user(session: Session, admin: User, *, email: str, password: str, role: str,
             company_id: int | None) -> User:
    """Create a user; `AccountError` says what is wrong with the input."""
    if admin.company_id is not None:
        if company_id not in (None, admin.company_id):
            raise AccountError("you can only create users of your own company")
        company_id = admin.company_id
    if company_id is not None and session.get(Company, company_id) is None:
        raise AccountError("no such company")
    user = create_user(session, email, password, role, company_id)
    _audit(session, admin, "user_created", user, role=user.role.value, company_id=company_id)
    session.commit()
    return user


def change_role(session: Session, admin: User, user_id: int, role: str) -> User:
    try:
        new_role = Role(role)
    except ValueError:
        raise AccountError(f"role must be one of: {', '.join(r.value for r in Role)}") from None
    user = _managed_user(session, admin, user_id)
    if user.id == admin.id and new_role != user.role:
        raise AccountError("you cannot change your own role; ask another admin")
    if user.role != new_role:
        _audit(session, admin, "user_role_changed", user, previous=user.role.value, role=new_role.value)
        user.role = new_role
        session.commit()
    return user


def set_active(session: Session, admin: User, user_id: int, active: bool) -> User:
    user = _managed_user(session, admin, user_id)
    if user.id == admin.id and not active:
        raise AccountError("you cannot deactivate yourself; ask another admin")
    if user.active != active:
        _audit(session, admin, "user_activated" if active else "user_deactivated", user)
        user.active = active
        session.commit()
    return user
