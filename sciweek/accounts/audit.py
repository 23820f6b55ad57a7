"""The audit log of accounts and roles: who changed which account, how, and when.

``record`` adds the entry to the session of the change it describes, so both commit (or
roll back) together; the admins read them at /manage/users/audit.
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from ..extensions import db
from ..models import AuditAction, AuditLog, User, utcnow
from .labels import FIELD_LABELS, ROLE_LABELS, VALUE_LABELS

PER_PAGE = 50


def record(
    action: AuditAction, target: User | None, actor: User | None = None, **details
) -> AuditLog:
    """Add one entry to the current transaction. ``actor`` None: the command line or the
    system (a lockout). Flushes only."""
    entry = AuditLog(
        action=action,
        actor_id=actor.id if actor is not None else None,
        target_user_id=target.id if target is not None else None,
        details=details,
        created_at=utcnow(),
    )
    db.session.add(entry)
    db.session.flush()
    return entry


def audit_page(page: int, target_user_id: int | None = None) -> Pagination:
    """Newest first, ``PER_PAGE`` entries a page; one account's when ``target_user_id``."""
    stmt = (
        select(AuditLog)
        .options(selectinload(AuditLog.actor), selectinload(AuditLog.target_user))
        .order_by(AuditLog.id.desc())
    )
    if target_user_id is not None:
        stmt = stmt.where(AuditLog.target_user_id == target_user_id)
    return db.paginate(stmt, page=page, per_page=PER_PAGE, error_out=False)


def detail_lines(entry: AuditLog) -> list[str]:
    """An entry's details as short lines for the page: "角色：组织者 → 镇街联络员"."""

    def shown(field: str, value: object) -> str:
        if value is None or value == "":
            return "—"
        if field == "role":
            return str(ROLE_LABELS.get(value, value))  # type: ignore[call-overload]
        if (field, value) in VALUE_LABELS:
            return str(VALUE_LABELS[(field, value)])  # type: ignore[index]
        if isinstance(value, bool):
            return _("是") if value else _("否")
        return str(value)

    lines = []
    details = entry.details or {}
    for field, change in (details.get("changes") or {}).items():
        old, new = change
        label = FIELD_LABELS.get(field, field)
        lines.append(f"{label}：{shown(field, old)} → {shown(field, new)}")
    for field, value in details.items():
        if field != "changes":
            lines.append(f"{FIELD_LABELS.get(field, field)}：{shown(field, value)}")
    return lines
