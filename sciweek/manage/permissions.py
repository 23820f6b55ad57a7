"""Who may change what. Checked on the server for every URL."""

from __future__ import annotations

from flask import abort
from flask_login import current_user
from sqlalchemy import Select, select

from ..models import Activity, Role, User, activity_departments, checker_assignments

EDITOR_ROLES = (Role.ADMIN, Role.ORGANIZER)
# Who works at the door: scanner pages, API tokens.
DOOR_ROLES = (Role.ADMIN, Role.ORGANIZER, Role.CHECKER)


def can_manage_activity(user: User, activity: Activity) -> bool:
    """Admins manage every activity; organizers those of their own department."""
    if user.role == Role.ADMIN:
        return True
    if user.role == Role.ORGANIZER and user.department_id is not None:
        return any(d.id == user.department_id for d in activity.departments)
    return False


def managed_activity_or_403(activity_id: int) -> Activity:
    """The activity, when the current user may manage it; 404 / 403 otherwise."""
    from ..extensions import db

    activity = db.get_or_404(Activity, activity_id)
    if not can_manage_activity(current_user, activity):
        abort(403)
    return activity


def can_check_in(user: User, activity: Activity) -> bool:
    """Door work: managers of the activity, and checkers assigned to it."""
    if can_manage_activity(user, activity):
        return True
    if user.role == Role.CHECKER:
        return any(a.id == activity.id for a in user.assigned_activities)
    return False


def activities_visible_to(user: User) -> Select:
    """The back-office activity list for ``user``."""
    stmt = select(Activity)
    if user.role == Role.ADMIN:
        return stmt
    if user.role == Role.ORGANIZER:
        return stmt.where(
            Activity.id.in_(
                select(activity_departments.c.activity_id).where(
                    activity_departments.c.department_id == user.department_id
                )
            )
        )
    if user.role == Role.CHECKER:
        return stmt.where(
            Activity.id.in_(
                select(checker_assignments.c.activity_id).where(
                    checker_assignments.c.user_id == user.id
                )
            )
        )
    if user.role == Role.COORDINATOR:
        return stmt.where(Activity.town_id == user.town_id)
    return stmt.where(False)
