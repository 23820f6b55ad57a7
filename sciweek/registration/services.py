"""Registration rules: places, waitlist, tickets and cancellation.

Capacity is guarded by the database, never by counting in Python first:
``activities.confirmed_count`` only changes through conditional UPDATEs, and a CHECK
constraint refuses any commit that would overbook.

Every change of places — registering (walk-ins too), cancelling (by the registrant or
staff), promoting after a capacity rise — is decided while holding the activity's lock
and reads the latest committed state, so the waitlist is served strictly in order:

* PostgreSQL: the activity's row lock (FOR NO KEY UPDATE). Registration is one
  statement that waits for the lock before deciding (see ``_PG_REGISTER``: a plain
  ``UPDATE ... WHERE confirmed_count < capacity`` would decide "full" from its snapshot
  without waiting, issue 9.1); cancellation and promotion take the lock first and read
  in later statements, which see everything committed before they got it.
* SQLite: the database write lock, taken by ``database.begin_write()`` before the first
  read the decision depends on.

A newcomer is therefore confirmed only when a place is free and nobody is waiting, and
a freed place goes to the earliest waitlisted person in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import Boolean, String, bindparam, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from sqlalchemy.orm.util import identity_key

from .. import signals
from ..database import begin_write
from ..extensions import db
from ..feed_changes import note_feed_change, user_scope
from ..i18n import format_datetime
from ..identity import IdentityError, normalize_phone, phone_tail
from ..models import (
    REGISTRATION_STATUS_VALUES,
    Activity,
    ActivitySession,
    ActivityStatus,
    Cadre,
    CheckIn,
    Registration,
    RegistrationStatus,
    ReplacedTicket,
    Town,
    UTCDateTime,
    VerificationPurpose,
    Village,
    utcnow,
)
from ..notifications import verification
from ..tokens import hash_secret
from .labels import CHECKED_IN, OVER_CAPACITY
from .tickets import (
    is_well_formed_secret,
    new_secret,
    new_short_code,
    normalize_short_code,
)

NAME_MAX = 50
RESUBMIT_WINDOW = timedelta(minutes=30)


class RegistrationRefused(Exception):
    """A user-facing reason, optionally tied to a form field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


class AlreadyRegistered(RegistrationRefused):
    def __init__(self, registration: Registration):
        super().__init__(_("该手机号已报名此活动。"), field="phone")
        self.registration = registration


@dataclass
class RegistrationRequest:
    name: str
    phone: str
    town_id: int | None = None
    village_id: int | None = None
    user_id: int | None = None
    submission: str | None = None  # the form's one-time id, for repeated submits
    # The SMS code sent to ``phone``, for an activity that asks for one (报名需短信验证).
    verification_code: str | None = None
    # A walk-in without a phone (无手机): ``phone`` is ignored, ``village_id`` required.
    without_phone: bool = False


@dataclass
class IssuedTicket:
    """A registration and its ticket secret: the only moment the secret is known."""

    registration_id: int
    secret: str
    status: str
    repeated: bool = False  # a repeated submit of the same form

    @property
    def registration(self) -> Registration:
        return db.session.get(Registration, self.registration_id)


def clean_name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not name:
        raise RegistrationRefused(_("请填写姓名。"), field="name")
    if len(name) > NAME_MAX:
        raise RegistrationRefused(_("姓名不能超过 %(n)s 个字。", n=NAME_MAX), field="name")
    return name


def registration_open_problem(activity: Activity, now: datetime | None = None) -> str | None:
    """Why registration is closed for ``activity`` now, or None when open."""
    now = now or utcnow()
    if activity.status == ActivityStatus.CANCELLED:
        return _("活动已取消，不能报名。")
    if activity.status != ActivityStatus.PUBLISHED:
        return _("活动尚未发布，不能报名。")
    if activity.registration_opens_at and now < activity.registration_opens_at:
        return _(
            "报名尚未开始，将于 %(when)s 开放。",
            when=format_datetime(activity.registration_opens_at),
        )
    if activity.registration_closes_at and now >= activity.registration_closes_at:
        return _("报名已截止。")
    if not activity.registration_closes_at and activity.ends_at and now >= activity.ends_at:
        return _("活动已结束。")
    return None


def _count_changed(activity_id: int) -> None:
    """The statements that count places bypass the ORM: an Activity this session has
    loaded reloads its count when next read (the request goes on after them)."""
    activity = db.session.identity_map.get(identity_key(Activity, activity_id))
    if activity is not None:
        db.session.expire(activity, ["confirmed_count", "over_capacity_count"])


def _take_place(activity_id: int) -> bool:
    """Atomically take one confirmed place; False when the activity is full."""
    _count_changed(activity_id)
    result = db.session.execute(
        update(Activity)
        .where(
            Activity.id == activity_id,
            Activity.status == ActivityStatus.PUBLISHED,
            (Activity.capacity.is_(None)) | (Activity.confirmed_count < Activity.capacity),
        )
        # Counting places is not an edit: updated_at (which feeds use) stays.
        .values(confirmed_count=Activity.confirmed_count + 1, updated_at=Activity.updated_at)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _release_place(activity_id: int) -> None:
    _count_changed(activity_id)
    db.session.execute(
        update(Activity)
        .where(Activity.id == activity_id, Activity.confirmed_count > 0)
        .values(confirmed_count=Activity.confirmed_count - 1, updated_at=Activity.updated_at)
        .execution_options(synchronize_session=False)
    )


# PostgreSQL: decide and write the registration in ONE statement, under the activity's
# row lock, so no Python runs while other registrations wait for the lock.
#
# The decision must wait for that lock. A plain ``UPDATE ... WHERE confirmed_count <
# capacity`` does not: in READ COMMITTED a row that fails the WHERE in the statement's
# snapshot is skipped without waiting, so a registration could see "full" while a
# cancellation holding the lock was about to free a place (issue 9.1). Here ``activity``
# locks the row first (FOR NO KEY UPDATE: it serialises everything that changes places,
# but not the foreign-key checks of other tables), which waits for any transaction
# holding it and then returns the latest committed version; every decision is read from
# it. ``place`` then updates that row: its snapshot still holds the older version, which
# PostgreSQL re-reads as the latest before writing (EvalPlanQual), computing the new
# count from the latest version. LEAST only keeps the CHECK constraint, which is tested
# on the older version before that re-read, from failing spuriously; on the latest
# version a free place means confirmed_count < capacity, so LEAST changes nothing.
# Registrations are numbered (waitlist order) under the lock, so in the order decided.
_PG_REGISTER = text(
    """
WITH activity AS (
    SELECT id,
           status = :published_status AS open,
           status = :published_status AND (waitlist_enabled OR :waitlist_when_full) AS waitlist,
           status = :published_status AND (capacity IS NULL OR confirmed_count < capacity) AS free
    FROM activities
    WHERE id = :activity_id
    FOR NO KEY UPDATE
),
place AS (
    UPDATE activities SET confirmed_count = LEAST(confirmed_count + 1, capacity)
    WHERE id = (SELECT id FROM activity WHERE free)
    RETURNING id
)
INSERT INTO registrations (
    activity_id, user_id, name, phone, town_id, village_id, status, secret_hash,
    short_code, submission_hash, walk_in, created_at, updated_at, confirmed_at, cadre_id)
SELECT :activity_id, :user_id, :name, :phone, :town_id, :village_id,
       CASE WHEN EXISTS (SELECT 1 FROM place) THEN :confirmed_status ELSE :waitlisted_status END,
       :secret_hash, :short_code, :submission_hash, :walk_in, :now, :now,
       CASE WHEN EXISTS (SELECT 1 FROM place) THEN :now END,
       (SELECT id FROM cadres WHERE phone = :cadre_phone)
WHERE EXISTS (SELECT 1 FROM place) OR EXISTS (SELECT 1 FROM activity WHERE waitlist)
RETURNING id, status
"""
).bindparams(
    bindparam("now", type_=UTCDateTime()),
    bindparam("waitlist_when_full", type_=Boolean()),
    # The statuses from their enums, so this statement names no status itself; rendered
    # as literals, so the plan is the one a literal status would get.
    *(
        bindparam(name, status, type_=String(), literal_execute=True)
        for name, status in (
            ("published_status", ActivityStatus.PUBLISHED),
            ("confirmed_status", RegistrationStatus.CONFIRMED),
            ("waitlisted_status", RegistrationStatus.WAITLISTED),
        )
    ),
)


def insert_registration(values: dict, waitlist_when_full: bool = False) -> tuple[int, str] | None:
    """Take a place if one is left, else a waitlist place, and insert the registration
    (``values``: its columns, and ``now``). The one place-taking statement: used by
    ``register_for_activity`` and by the roster door for a cadre without a phone
    (``checkin.roster_door``); call it in a savepoint (a unique index may refuse the row).

    None when refused: full without a waitlist, or no longer published. Decided under
    the activity's lock on the latest committed state (see _PG_REGISTER).
    ``waitlist_when_full``: waitlist even without a waitlist (a door admission over
    capacity, which takes the person off it in the same transaction).
    """
    if values["user_id"] is not None:
        # The insert bypasses the ORM, whose flushes count feed changes: the person's
        # calendar feed (feed_changes.py) changes with their registrations.
        note_feed_change(db.session(), [user_scope(values["user_id"])])
    if db.session.get_bind().dialect.name == "postgresql":
        params = {
            **values,
            "cadre_phone": values["phone"],
            "waitlist_when_full": waitlist_when_full,
        }
        row = db.session.execute(_PG_REGISTER, params).first()
        _count_changed(values["activity_id"])
        return (row.id, row.status) if row else None
    # SQLite: decided under the database write lock, taken before the first read here.
    begin_write()
    confirmed = _take_place(values["activity_id"])
    if not confirmed:
        activity = db.session.execute(
            select(Activity.status, Activity.waitlist_enabled).where(
                Activity.id == values["activity_id"]
            )
        ).one()
        waitlist = activity.waitlist_enabled or waitlist_when_full
        if activity.status != ActivityStatus.PUBLISHED or not waitlist:
            return None
    status = RegistrationStatus.CONFIRMED if confirmed else RegistrationStatus.WAITLISTED
    now = values.pop("now")
    result = db.session.execute(
        insert(Registration).values(
            **values,
            status=status,
            created_at=now,
            updated_at=now,
            confirmed_at=now if confirmed else None,
            # (No phone, no cadre: ``Cadre.phone == None`` would read as IS NULL.)
            cadre_id=select(Cadre.id).where(Cadre.phone == values["phone"]).scalar_subquery()
            if values["phone"] is not None
            else None,
        )
    )
    return result.inserted_primary_key[0], status


def register_for_activity(
    activity_id: int,
    request: RegistrationRequest,
    *,
    walk_in: bool = False,
    now: datetime | None = None,
    waitlist_when_full: bool = False,
) -> IssuedTicket:
    """Register one person, confirmed while places last, else waitlisted.

    One transaction: the place is taken and the registration written together,
    or neither. Raises RegistrationRefused (with a field) or AlreadyRegistered.
    Walk-ins (registered at the door) skip the registration window, and may come without
    a phone (``request.without_phone``: then one per name and village).
    ``waitlist_when_full``: see ``insert_registration``.
    """
    name = clean_name(request.name)
    phone = _phone_of(request, walk_in=walk_in)
    activity = db.session.get(Activity, activity_id)
    if activity is None:
        raise RegistrationRefused(_("活动不存在。"))
    _check_residence(request.town_id, request.village_id)
    problem = registration_open_problem(activity, now)
    if walk_in and activity.status == ActivityStatus.PUBLISHED:
        problem = None
    if problem:
        raise RegistrationRefused(problem)

    submission_hash = hash_secret(request.submission) if request.submission else None
    begin_write()  # SQLite: before the savepoint below (see transactions.all_or_nothing)
    if activity.sms_verification and not walk_in and phone is not None:
        # A repeated submit of the form that registered (a double tap) gets its ticket
        # again: the code it carried is used up by then.
        existing = _active_registration(activity_id, phone)
        if existing is not None and submission_hash and existing.submission_hash == submission_hash:
            return _repeat_or_refuse(existing, submission_hash)
        _check_verification_code(activity_id, phone, request.verification_code)
    for _attempt in range(5):
        secret = new_secret()
        values = {
            "activity_id": activity_id,
            "user_id": request.user_id,
            "name": name,
            "phone": phone,
            "town_id": request.town_id or None,
            "village_id": request.village_id or None,
            "secret_hash": hash_secret(secret),
            "short_code": new_short_code(),
            "submission_hash": submission_hash,
            "walk_in": walk_in,
            "now": utcnow(),
        }
        try:
            # A savepoint, so that a refused insert can be retried within the caller's
            # transaction (which commits; this service only flushes).
            with db.session.begin_nested():
                inserted = insert_registration(values, waitlist_when_full)
        except IntegrityError:
            # The partial unique index says this phone (or, without one, this name and
            # village) is already registered (perhaps by a request a moment ago), or, very
            # rarely, the short code was taken. Rolling back to the savepoint gives the
            # place back.
            existing = _standing_registration_of(activity_id, phone, name, request.village_id)
            if existing is not None:
                return _repeat_or_refuse(existing, submission_hash)
            continue
        if inserted is None:
            # Full without a waitlist, or (rarely) unpublished a moment ago.
            activity = db.session.get(Activity, activity_id)
            if activity is not None and activity.status != ActivityStatus.PUBLISHED:
                raise RegistrationRefused(registration_open_problem(activity))
            raise RegistrationRefused(_("名额已满。"))
        signals.registration_made.send(
            activity_id,
            registration_id=inserted[0],
            phone=phone,
            status=inserted[1],
            short_code=values["short_code"],
            secret=secret,
            walk_in=walk_in,
        )
        return IssuedTicket(inserted[0], secret, status=inserted[1])
    raise RuntimeError("could not register after several short-code collisions")


def _check_verification_code(activity_id: int, phone: str, code: str | None) -> None:
    """报名需短信验证: the code sent to ``phone`` for this activity, used up in this
    transaction (with the registration, or not at all when the registration is refused).
    A wrong code raises ``verification.VerificationRefused`` and counts a try: the caller
    answers with the form (status 200), so that the try is committed."""
    if not (code or "").strip():
        raise RegistrationRefused(_("请填写短信验证码。"), field="verification_code")
    verification.check_code(
        phone, VerificationPurpose.REGISTER, code or "", scope=verification_scope(activity_id)
    )


def send_registration_code(activity: Activity, phone: str) -> None:
    """报名需短信验证: send a code to ``phone`` for registering for ``activity``.
    Raises RegistrationRefused (registration closed) or VerificationRefused (too often)."""
    if not activity.sms_verification:
        raise RegistrationRefused(_("此活动报名无需短信验证码。"))
    problem = registration_open_problem(activity)
    if problem:
        raise RegistrationRefused(problem)
    verification.request_code(
        phone, VerificationPurpose.REGISTER, scope=verification_scope(activity.id)
    )


def verification_scope(activity_id: int) -> str:
    """A registration's code is good for its activity only."""
    return f"a{activity_id}"


def _phone_of(request: RegistrationRequest, *, walk_in: bool) -> str | None:
    """The normalised phone, or None for a walk-in without a phone (who names a village)."""
    if request.without_phone:
        if not walk_in:
            raise RegistrationRefused(_("请填写手机号。"), field="phone")
        if not request.village_id:
            raise RegistrationRefused(_("没有手机的，请选择所在村/社区。"), field="village_id")
        return None
    try:
        return normalize_phone(request.phone)
    except IdentityError as exc:
        raise RegistrationRefused(str(exc), field="phone") from None


def _standing_registration_of(
    activity_id: int, phone: str | None, name: str, village_id: int | None
) -> Registration | None:
    """Who an insert collided with: the same phone (or its cadre's registration), or for a
    walk-in without a phone the same name and village."""
    if phone is not None:
        return _active_registration(activity_id, phone) or _active_registration_of_cadre(
            activity_id, phone
        )
    return db.session.scalar(
        select(Registration).where(
            Registration.activity_id == activity_id,
            Registration.phone.is_(None),
            Registration.village_id == village_id,
            Registration.name == name,
            Registration.is_standing,
        )
    )


def _check_residence(town_id: int | None, village_id: int | None) -> None:
    """The chosen town exists and the chosen village lies in it (either may be left out)."""
    if village_id:
        village = db.session.get(Village, village_id)
        if village is None or (town_id and village.town_id != town_id):
            raise RegistrationRefused(_("所选村/社区不属于所选镇街。"), field="village_id")
    if town_id and db.session.get(Town, town_id) is None:
        raise RegistrationRefused(_("所选镇街不存在。"), field="town_id")


def _active_registration(activity_id: int, phone: str) -> Registration | None:
    return db.session.scalar(
        select(Registration).where(
            Registration.activity_id == activity_id,
            Registration.phone == phone,
            Registration.is_standing,
        )
    )


def _active_registration_of_cadre(activity_id: int, phone: str) -> Registration | None:
    """The roster cadre with this phone already holds a registration (made by hand)."""
    return db.session.scalar(
        select(Registration).where(
            Registration.activity_id == activity_id,
            Registration.is_standing,
            Registration.cadre_id == select(Cadre.id).where(Cadre.phone == phone).scalar_subquery(),
        )
    )


def _repeat_or_refuse(existing: Registration, submission_hash: str | None) -> IssuedTicket:
    """A repeated submit of the same form gets the ticket again (with a fresh secret)."""
    begin_write()  # (reloads ``existing`` under the lock)
    if (
        submission_hash
        and existing.submission_hash == submission_hash
        and utcnow() - existing.created_at < RESUBMIT_WINDOW
    ):
        secret = reissue_ticket(existing)
        registration_id, status = existing.id, existing.status
        db.session.flush()
        return IssuedTicket(registration_id, secret, status, repeated=True)
    raise AlreadyRegistered(existing)


def reissue_ticket(registration: Registration) -> str:
    """Give a registration a new secret; the old QR code stops working, and its link says
    that a newer one exists (``replaced_ticket``)."""
    secret = new_secret()
    db.session.add(
        ReplacedTicket(secret_hash=registration.secret_hash, registration_id=registration.id)
    )
    registration.secret_hash = hash_secret(secret)
    return secret


def replaced_ticket(secret: str) -> ReplacedTicket | None:
    """The record of a ticket secret that a newer one replaced, or None."""
    if not is_well_formed_secret(secret):
        return None
    return db.session.get(ReplacedTicket, hash_secret(secret))


def registration_by_secret(secret: str) -> Registration | None:
    if not is_well_formed_secret(secret):
        return None
    return db.session.scalar(
        select(Registration).where(Registration.secret_hash == hash_secret(secret))
    )


def find_ticket(phone: str, short_code: str) -> Registration | None:
    """The registration matching a phone and short code, for people who lost their link."""
    try:
        phone = normalize_phone(phone)
    except IdentityError:
        return None
    code = normalize_short_code(short_code)
    if code is None:
        return None
    return db.session.scalar(
        select(Registration)
        .where(Registration.phone == phone, Registration.short_code == code)
        .order_by(Registration.id.desc())
        .limit(1)
    )


def waitlist_position(registration: Registration) -> int | None:
    """1 for the next person to be promoted."""
    if registration.status != RegistrationStatus.WAITLISTED:
        return None
    ahead = db.session.scalar(
        select(func.count(Registration.id)).where(
            Registration.activity_id == registration.activity_id,
            Registration.status == RegistrationStatus.WAITLISTED,
            Registration.id < registration.id,
        )
    )
    return int(ahead or 0) + 1


def _first_waitlisted(activity_id: int) -> Registration | None:
    return db.session.scalar(
        select(Registration)
        .where(
            Registration.activity_id == activity_id,
            Registration.status == RegistrationStatus.WAITLISTED,
        )
        .order_by(Registration.id)
        .limit(1)
        # The activity row lock already serialises promotions; skipping a row locked for
        # another reason would promote the second in line before the first.
        .with_for_update()
    )


def _lock_activity(activity_id: int) -> None:
    """Take the activity row lock first, as registration does (consistent lock order).

    FOR NO KEY UPDATE, the lock registration takes: it serialises everything that
    changes places without blocking foreign-key checks (a scan logged for the activity).
    """
    db.session.execute(
        select(Activity.id).where(Activity.id == activity_id).with_for_update(key_share=True)
    )


def cancel_registration(registration_id: int, *, by_staff: bool = False) -> Registration | None:
    """Cancel a registration; a freed place goes to the first waitlisted person.

    One transaction. Returns the promoted registration, if any. The promoted person is
    told, and so is the registrant when staff cancelled (``by_staff``).
    """
    begin_write()
    registration = db.session.get(Registration, registration_id)
    if registration is None:
        raise RegistrationRefused(_("报名记录不存在。"))
    _lock_activity(registration.activity_id)
    db.session.refresh(registration, with_for_update=True)
    if registration.status == RegistrationStatus.CANCELLED:
        raise RegistrationRefused(_("此报名已取消。"))
    if _has_live_check_in(registration.id):
        raise RegistrationRefused(_("已签到的报名不能取消。"))
    was_confirmed = registration.status == RegistrationStatus.CONFIRMED
    registration.status = RegistrationStatus.CANCELLED
    registration.cancelled_at = utcnow()
    db.session.flush()
    promoted = None
    if was_confirmed and registration.over_capacity:
        # A place beyond capacity: nothing to hand on, one fewer admitted over capacity.
        _change_over_capacity_count(registration.activity_id, -1)
    elif was_confirmed:
        promoted = _first_waitlisted(registration.activity_id)
        if promoted is not None:
            # The place moves straight to the waitlisted person: the count is unchanged.
            promoted.status = RegistrationStatus.CONFIRMED
            promoted.confirmed_at = utcnow()
        else:
            _release_place(registration.activity_id)
    db.session.flush()
    if by_staff:
        signals.registration_cancelled_by_staff.send(registration)
    if promoted is not None:
        signals.registration_promoted.send(promoted)
    return promoted


def _change_over_capacity_count(activity_id: int, by: int) -> None:
    _count_changed(activity_id)
    db.session.execute(
        update(Activity)
        .where(Activity.id == activity_id)
        .values(
            over_capacity_count=Activity.over_capacity_count + by, updated_at=Activity.updated_at
        )
        .execution_options(synchronize_session=False)
    )


def admit_over_capacity(registration: Registration, admitted_by_id: int) -> bool:
    """Give a waitlisted person a place at the door although the activity is full (超额签到,
    an organizer's decision when the hall has free seats).

    The place is a regular one when one is free; otherwise it is beyond capacity:
    ``over_capacity`` with who and when on the registration, counted in
    ``Activity.over_capacity_count``, never in ``confirmed_count`` (whose CHECK keeps
    guarding registration). Decided under the activity's lock, which every change of places
    takes: of two devices admitting one person at once, one admits (True), the other then
    finds them confirmed (False). Raises RegistrationRefused when the activity is not
    published.
    """
    begin_write()
    _lock_activity(registration.activity_id)
    activity = registration.activity
    db.session.refresh(activity)
    if activity.status != ActivityStatus.PUBLISHED:
        raise RegistrationRefused(
            registration_open_problem(activity) or _("活动未发布，不能签到。")
        )
    now = utcnow()
    in_place = db.session.execute(
        select(Registration.status).where(Registration.id == registration.id)
    ).scalar_one()
    if in_place != RegistrationStatus.WAITLISTED:
        db.session.refresh(registration)
        return False
    over = not _take_place(activity.id)
    db.session.execute(
        update(Registration)
        .where(Registration.id == registration.id, Registration.status == in_place)
        .values(
            status=RegistrationStatus.CONFIRMED,
            confirmed_at=now,
            updated_at=now,
            over_capacity=over,
            over_capacity_by_id=admitted_by_id if over else None,
            over_capacity_at=now if over else None,
        )
        .execution_options(synchronize_session=False)
    )
    if over:
        _change_over_capacity_count(activity.id, +1)
    db.session.refresh(registration)
    return True


def _has_live_check_in(registration_id: int) -> bool:
    return (
        db.session.scalar(
            select(CheckIn.id)
            .where(CheckIn.registration_id == registration_id, CheckIn.undone_at.is_(None))
            .limit(1)
        )
        is not None
    )


def fill_from_waitlist(activity_id: int) -> int:
    """Promote waitlisted people into free places (after capacity was raised).

    Runs in the caller's transaction, which must be able to write (on SQLite: hold
    the write lock since before it read the activity, see ``database``); returns how
    many were promoted.
    """
    _lock_activity(activity_id)
    promoted = 0
    while True:
        candidate = _first_waitlisted(activity_id)
        if candidate is None or not _take_place(activity_id):
            break
        candidate.status = RegistrationStatus.CONFIRMED
        candidate.confirmed_at = utcnow()
        db.session.flush()
        signals.registration_promoted.send(candidate)
        promoted += 1
    return promoted


def registrations_of_user(user_id: int) -> list[Registration]:
    return list(
        db.session.scalars(
            select(Registration)
            .where(Registration.user_id == user_id)
            .options(selectinload(Registration.activity).selectinload(Activity.sessions))
            .order_by(Registration.created_at.desc())
        )
    )


@dataclass
class RegistrantRow:
    registration: Registration
    checked_in: int  # sessions attended
    waitlist_position: int | None


def list_registrants(
    activity_id: int, *, query: str = "", status: str | None = None
) -> list[RegistrantRow]:
    """Registrants of an activity, searchable by name or the last four digits of the phone.

    Only the tail (``identity.phone_tail``): longer digit strings, prefixes and full
    numbers never match phones, or the masked middle could be recovered by trying.
    """
    checked = (
        select(CheckIn.registration_id, func.count(CheckIn.id).label("n"))
        .where(CheckIn.undone_at.is_(None))
        .group_by(CheckIn.registration_id)
        .subquery()
    )
    stmt = (
        select(Registration, func.coalesce(checked.c.n, 0))
        .options(selectinload(Registration.town), selectinload(Registration.village))
        .outerjoin(checked, checked.c.registration_id == Registration.id)
        .where(Registration.activity_id == activity_id)
        .order_by(Registration.id)
    )
    if status == CHECKED_IN:
        stmt = stmt.where(checked.c.n > 0)
    elif status in REGISTRATION_STATUS_VALUES:
        stmt = stmt.where(Registration.status == status)
    if query:
        tail = phone_tail(query)
        if tail is not None:
            stmt = stmt.where(Registration.phone.endswith(tail))
        else:
            stmt = stmt.where(Registration.name.contains(query, autoescape=True))
    rows, position = [], 0
    for registration, n in db.session.execute(stmt):
        pos = None
        if registration.status == RegistrationStatus.WAITLISTED:
            position += 1
            pos = (
                position if not query and status in (None, RegistrationStatus.WAITLISTED) else None
            )
        rows.append(RegistrantRow(registration, int(n), pos))
    return rows


def registrant_counts(activity_id: int) -> dict[str, int]:
    counts = dict(
        db.session.execute(
            select(Registration.status, func.count(Registration.id))
            .where(Registration.activity_id == activity_id)
            .group_by(Registration.status)
        ).all()
    )
    checked_in = db.session.scalar(
        select(func.count(func.distinct(CheckIn.registration_id)))
        .join(Registration, Registration.id == CheckIn.registration_id)
        .where(Registration.activity_id == activity_id, CheckIn.undone_at.is_(None))
    )
    # Admitted over capacity at the door: confirmed, but shown apart (确认 20/20 + 超额 3).
    over = db.session.scalar(
        select(func.count(Registration.id)).where(
            Registration.activity_id == activity_id,
            Registration.status == RegistrationStatus.CONFIRMED,
            Registration.over_capacity,
        )
    )
    counts[RegistrationStatus.CONFIRMED] = counts.get(RegistrationStatus.CONFIRMED, 0) - over
    return {
        **{status: counts.get(status, 0) for status in RegistrationStatus},
        OVER_CAPACITY: int(over or 0),
        CHECKED_IN: int(checked_in or 0),
    }


RETENTION = timedelta(days=365)


def purge_expired_registrations(now: datetime | None = None) -> int:
    """Remove phone numbers and names kept longer than promised on the form.

    Registrations of activities whose last session ended more than a year ago keep
    their place in the statistics, but lose the person's name and phone. Their roster
    cadre, stored when they registered or when the roster was imported, stays, so
    training coverage of past years still counts them. One transaction.
    """
    cutoff = (now or utcnow()) - RETENTION
    ended = (
        select(ActivitySession.activity_id)
        .group_by(ActivitySession.activity_id)
        .having(func.max(ActivitySession.ends_at) < cutoff)
    )
    expired = select(Registration.id).where(
        Registration.activity_id.in_(ended),
        Registration.phone.is_(None) | ~Registration.phone.startswith("x"),
    )
    ids = db.session.scalars(expired).all()
    if ids:
        # "x" + the id: unique per activity, never a valid phone, never matched again.
        db.session.execute(
            update(Registration),
            [
                {"id": i, "name": "（已删除）", "phone": f"x{i:010d}", "submission_hash": None}
                for i in ids
            ],
        )
    return len(ids)
