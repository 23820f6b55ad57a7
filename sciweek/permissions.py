"""Who may do what: the roles, the activity and town scoping, and the ``can`` template helper.

The one place these rules are written. Routes guard their URLs with ``roles_required`` and
the ``*_or_403`` look-ups; services ask ``can_manage_activity`` / ``can_check_in``;
templates ask ``can('door')`` or ``can('manage', activity)`` instead of repeating role
tuples. Every check is made on the server for every URL; a template only hides links.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from flask import Flask, abort, redirect, request, url_for
from flask_login import current_user
from sqlalchemy import Select, select

from .extensions import db
from .models import (
    STAFF_ROLES,
    Activity,
    ActivityKind,
    ActivitySession,
    Cadre,
    Role,
    Town,
    User,
    activity_departments,
    checker_assignments,
)

# Who edits activities and sees their registrants.
EDITOR_ROLES = (Role.ADMIN, Role.ORGANIZER)
# Who works at the door: scanner pages, API tokens.
DOOR_ROLES = (Role.ADMIN, Role.ORGANIZER, Role.CHECKER)
# Who sees training coverage.
COVERAGE_ROLES = (Role.ADMIN, Role.ORGANIZER, Role.COORDINATOR)
# Who keeps cadre rosters (coordinators their own town's).
ROSTER_ROLES = (Role.ADMIN, Role.COORDINATOR)
# Who sets the towns' coverage targets.
TARGET_ROLES = (Role.ADMIN,)
# Who prints sessions' paper 签到表 (coordinators those of their town's trainings).
SIGNIN_SHEET_ROLES = (Role.ADMIN, Role.ORGANIZER, Role.COORDINATOR)
# Who edits towns' names as rosters write them (aliases).
PLACE_ROLES = (Role.ADMIN,)
# Who sees the log of full phone numbers shown (显示完整号码).
REVEAL_LOG_ROLES = (Role.ADMIN,)
# Who sees and exports the annual assessment (年度目标考核): the whole district's figures,
# as the coverage pages show them to organizers.
REPORT_ROLES = (Role.ADMIN, Role.ORGANIZER)
# Who manages accounts, roles and lockouts, and reads their audit log (/manage/users).
ACCOUNT_ROLES = (Role.ADMIN,)

__all__ = [
    "ACCOUNT_ROLES",
    "COVERAGE_ROLES",
    "DOOR_ROLES",
    "EDITOR_ROLES",
    "PLACE_ROLES",
    "REPORT_ROLES",
    "REVEAL_LOG_ROLES",
    "ROSTER_ROLES",
    "SIGNIN_SHEET_ROLES",
    "STAFF_ROLES",
    "TARGET_ROLES",
    "activities_visible_to",
    "can",
    "can_admit_over_capacity",
    "can_check_in",
    "can_work_roster_door",
    "can_manage_activity",
    "can_print_signin_sheet",
    "can_reveal_cadre_phone",
    "can_reveal_registrant_phone",
    "can_see_cadre",
    "cadre_or_403",
    "can_override_checkin_window",
    "coordinator_town_id",
    "init_app",
    "managed_activity_or_403",
    "own_town_ids",
    "roles_required",
    "session_or_404",
    "roster_door_town_id",
    "town_or_403",
]


def roles_required(*roles: Role) -> Callable:
    """Require a logged-in user holding one of ``roles``; otherwise log in or 403."""

    def decorator(view: Callable) -> Callable:
        @wraps(view)
        def wrapped(*args, **kwargs):
            if not current_user.is_authenticated:
                return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
            if current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


# --- activities ------------------------------------------------------------------------


def can_manage_activity(user: User, activity: Activity) -> bool:
    """Admins manage every activity; organizers those of their own department."""
    if user.role == Role.ADMIN:
        return True
    if user.role == Role.ORGANIZER and user.department_id is not None:
        return any(d.id == user.department_id for d in activity.departments)
    return False


def managed_activity_or_403(activity_id: int) -> Activity:
    """The activity, when the current user may manage it; 404 / 403 otherwise."""
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


def can_print_signin_sheet(user: User, activity: Activity) -> bool:
    """A session's paper 签到表: managers of the activity, and the coordinator of the town a
    training is held in (the town summons its cadres). Typing a signed sheet in is managing
    the activity (``can_manage_activity``): coordinators are assessed on the coverage it
    counts towards."""
    if can_manage_activity(user, activity):
        return True
    return (
        user.role == Role.COORDINATOR
        and activity.kind == ActivityKind.TRAINING
        and activity.town_id is not None
        and activity.town_id == user.town_id
    )


def session_or_404(session_id: int) -> ActivitySession:
    """A session by id (404 when there is none); the caller checks its activity."""
    return db.get_or_404(ActivitySession, session_id)


def can_override_checkin_window(user: User, activity: Activity) -> bool:
    """Check someone in outside the session's check-in window ("仍然签到", with a reason):
    the activity's managers (its organizers, admins), never checkers."""
    return can_manage_activity(user, activity)


def can_work_roster_door(user: User, activity: Activity) -> bool:
    """The roster door of a training (its invited cadres: search, check-in): door staff of
    the activity, and coordinators whose town's cadres it invites."""
    if can_check_in(user, activity):
        return True
    return user.role == Role.COORDINATOR and activity.invites_cadres_of(user.town_id)


def roster_door_town_id(user: User, activity: Activity) -> int | None:
    """At a training's roster door: None when ``user`` sees every invited cadre (door staff),
    else the one town whose cadres they see and check in (a coordinator's own)."""
    if can_check_in(user, activity):
        return None
    return coordinator_town_id(user)


def can_admit_over_capacity(user: User, activity: Activity) -> bool:
    """Admitting someone beyond capacity at the door (超额签到) is the organizers' decision
    (and admins'); checkers may not."""
    return can_manage_activity(user, activity)


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


# --- towns (training) ------------------------------------------------------------------


def can_reveal_registrant_phone(user: User, activity: Activity) -> bool:
    """显示完整号码 of a registrant: the activity's managers (its organizers, admins);
    never checkers or coordinators. Each reveal is logged (sciweek/privacy)."""
    return can_manage_activity(user, activity)


def can_reveal_cadre_phone(user: User, town_id: int) -> bool:
    """显示完整号码 of a roster cadre: the coordinator of the cadre's town, and admins."""
    return can_see_town(user, town_id)


def can_see_town(user: User, town_id: int | None) -> bool:
    """Town detail (roster, untrained cadres): admins any town, coordinators their own."""
    if user.role == Role.ADMIN:
        return True
    return user.role == Role.COORDINATOR and town_id is not None and user.town_id == town_id


def town_or_403(town_id: int) -> Town:
    """A town the current user may see in detail; 404 / 403 otherwise."""
    town = db.get_or_404(Town, town_id)
    if not can_see_town(current_user, town.id):
        abort(403)
    return town


def can_see_cadre(user: User, cadre: Cadre) -> bool:
    """A cadre's training record (台账): admins; the coordinator of a town the cadre serves
    or served in (a cadre who moved keeps past years in the town they served then)."""
    if user.role == Role.ADMIN:
        return True
    if user.role != Role.COORDINATOR or user.town_id is None:
        return False
    return user.town_id == cadre.town_id or any(p.town_id == user.town_id for p in cadre.periods)


def cadre_or_403(cadre_id: int) -> Cadre:
    """A cadre whose record the current user may see; 404 / 403 otherwise."""
    cadre = db.get_or_404(Cadre, cadre_id)
    if not can_see_cadre(current_user, cadre):
        abort(403)
    return cadre


def coordinator_town_id(user: User) -> int | None:
    """The one town a coordinator is limited to; None for everyone else."""
    return user.town_id if user.role == Role.COORDINATOR else None


def own_town_ids(user: User) -> list[int] | None:
    """None for the whole district, else the towns ``user`` is limited to."""
    return [user.town_id] if user.role == Role.COORDINATOR else None


# --- templates -------------------------------------------------------------------------

# What a template may ask: ``can(action)`` for a kind of work, ``can(action, activity)``
# for one activity.
_ROLE_ACTIONS: dict[str, tuple[Role, ...]] = {
    "staff": STAFF_ROLES,
    "manage": EDITOR_ROLES,
    "door": DOOR_ROLES,
    "roster_door": STAFF_ROLES,
    "admit_over_capacity": EDITOR_ROLES,
    "coverage": COVERAGE_ROLES,
    "roster": ROSTER_ROLES,
    "targets": TARGET_ROLES,
    "places": PLACE_ROLES,
    "choose_town": TARGET_ROLES,
    "signin_sheet": SIGNIN_SHEET_ROLES,
    "reveal_log": REVEAL_LOG_ROLES,
    "reports": REPORT_ROLES,
    "accounts": ACCOUNT_ROLES,
}
_ACTIVITY_ACTIONS: dict[str, Callable[[User, Activity], bool]] = {
    "manage": can_manage_activity,
    "door": can_check_in,
    "signin_sheet": can_print_signin_sheet,
    "roster_door": can_work_roster_door,
    "reveal_phone": can_reveal_registrant_phone,
    "admit_over_capacity": can_admit_over_capacity,
}


def can(action: str, activity: Activity | None = None, *, user: User | None = None) -> bool:
    """May ``user`` (the current user by default) do ``action`` (on ``activity``)?"""
    user = current_user if user is None else user
    if not getattr(user, "is_authenticated", False):
        return False
    if action not in _ROLE_ACTIONS:
        raise ValueError(f"unknown permission {action!r}")
    if activity is not None:
        return _ACTIVITY_ACTIONS[action](user, activity)
    return user.role in _ROLE_ACTIONS[action]


def init_app(app: Flask) -> None:
    """Make ``can`` a Jinja global."""
    app.jinja_env.globals["can"] = can
