"""The door of a training for its roster cadres (``training.invitations``).

Towns summon their cadres; many arrive without having registered online. At the door:

- ``search_door`` finds registrations and invited cadres by name, phone or the last 4
  characters of the phone or the ID number (``person_query``); a coordinator sees their own
  town's cadres only and is refused another town's (``NotYourTown``);
- ``check_in_cadre`` checks a cadre in; without a registration, one is made for them,
  linked to the cadre, in the same transaction (``registration_for_cadre``);
- ``cadre_self_check_in``: a cadre checks themself in with proof held by the person, never
  with a phone number alone: the ID number's last 6 (``PhoneAndIdTail``) or an SMS code
  sent to the roster phone (``send_self_check_in_code``, ``SmsCode``);
- ``add_roster_cadres`` puts the cadres into the offline roster, masked.

One registration per cadre and activity, whatever races, is the database's: the partial
unique indexes ``uq_registrations_active_cadre`` (activity, cadre) and
``uq_registrations_active_phone`` (activity, phone). A registration made here carries the
cadre's phone (and so their cadre, as an online registration with that phone does), or, for
a cadre without a phone, a key made of the cadre's id (``no_phone_key``). Two door devices
checking in one cadre, or the cadre registering online at the same moment, make one
registration: the loser's insert conflicts (after waiting for the winner's commit) and it
takes the winner's registration; ``uq_checkins_live`` then gives one check-in.
``tests/test_roster_door_live.py`` fires such races at a live server.
"""

from __future__ import annotations

import hmac
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import Row, Select, and_, case, exists, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from ..database import begin_write
from ..extensions import db
from ..identity import IdentityError, mask_id_number, mask_phone, normalize_phone
from ..models import (
    Activity,
    ActivitySession,
    Cadre,
    CadrePeriod,
    CheckIn,
    CheckInMethod,
    Registration,
    RegistrationStatus,
    Town,
    User,
    VerificationPurpose,
    Village,
    utcnow,
)
from ..notifications import verification
from ..permissions import can_override_checkin_window, roster_door_town_id
from ..person_query import DoorQuery, matches_query, parse_door_query
from ..registration import services as registration_services
from ..registration.tickets import new_secret, new_short_code
from ..tokens import hash_secret
from ..training.invitations import (
    invited_cadre,
    invited_cadres,
    invited_filter,
    invited_periods,
    period_at_training,
    training_periods,
)
from . import services, windows

SEARCH_LIMIT = 30


class NotYourTown(Exception):
    """A coordinator asked for another town's cadres at a training's door (403)."""


# --- registrations of cadres ------------------------------------------------------------

_DIGIT_LETTERS = str.maketrans("0123456789", "abcdefghij")


# ``Registration.is_standing`` with the status as a literal, not a bound parameter: then the
# partial unique indexes (``WHERE status <> 'cancelled'``) serve the look-ups below (with a
# parameter SQLite cannot tell that they apply, and scans the activity's registrations).
_STANDING = Registration.status != literal(RegistrationStatus.CANCELLED.value, literal_execute=True)


def no_phone_key(cadre_id: int) -> str:
    """What a registration made for a cadre without a phone holds in place of the phone:
    unique per cadre (so the one-per-phone index also guards these), never a phone, never
    matched by a phone search (no digits), masked as nothing, and not the purge's ``x``."""
    return "c" + str(cadre_id).translate(_DIGIT_LETTERS)


def _standing_registration_of(activity_id: int, cadre: Cadre) -> Registration | None:
    """The cadre's standing registration for the activity: linked to them, or (not linked,
    e.g. unlinked by hand) made with their phone. The linked one first."""
    phone = cadre.phone or no_phone_key(cadre.id)
    return db.session.scalar(
        select(Registration)
        .where(
            Registration.activity_id == activity_id,
            _STANDING,
            or_(Registration.cadre_id == cadre.id, Registration.phone == phone),
        )
        # (CASE, not the comparison: NULL sorts first on PostgreSQL, last on SQLite.)
        .order_by(case((Registration.cadre_id == cadre.id, 0), else_=1), Registration.id)
        .limit(1)
    )


def _linked(registration: Registration, cadre: Cadre) -> Registration:
    """The door has identified this registration's holder as ``cadre``: link it when it is
    linked to nobody (unless the cadre meanwhile holds another registration here)."""
    if registration.cadre_id is None:
        try:
            with db.session.begin_nested():
                registration.cadre_id = cadre.id
                db.session.flush()
        except IntegrityError:
            db.session.refresh(registration)
    return registration


def registration_for_cadre(activity: Activity, cadre: Cadre) -> Registration:
    """The cadre's standing registration for ``activity``, made now (at the door, in the
    caller's transaction) when they hold none.

    It takes a place as any registration does (``register_for_activity``): a full
    training with a waitlist waitlists it. Raises ``RegistrationRefused`` when the training
    takes nobody (not published, full without a waitlist).
    """
    existing = _standing_registration_of(activity.id, cadre)
    if existing is not None:
        return _linked(existing, cadre)
    # The town and village the cadre served in at the time of the training.
    place = period_at_training(activity, cadre) or cadre
    if cadre.phone:
        request = registration_services.RegistrationRequest(
            name=cadre.name, phone=cadre.phone, town_id=place.town_id, village_id=place.village_id
        )
        try:
            # The registration finds its cadre by the phone, as one made online does.
            issued = registration_services.register_for_activity(activity.id, request, walk_in=True)
        except registration_services.AlreadyRegistered as exc:
            return _linked(exc.registration, cadre)
        return _linked(issued.registration, cadre)
    return _register_cadre_without_phone(activity, cadre, place)


def _register_cadre_without_phone(
    activity: Activity, cadre: Cadre, place: CadrePeriod | Cadre
) -> Registration:
    """A registration for a cadre the roster has no phone for (``no_phone_key``).

    The same place-taking statement as ``register_for_activity`` (which requires a phone),
    in a savepoint; a conflict means another request registered the cadre first.
    """
    if not activity.is_published:  # a door skips the registration window, not the status
        raise registration_services.RegistrationRefused(
            registration_services.registration_open_problem(activity) or _("活动未开放签到。")
        )
    begin_write()
    for _attempt in range(5):
        values = {
            "activity_id": activity.id,
            "user_id": None,
            "name": cadre.name,
            "phone": no_phone_key(cadre.id),
            "town_id": place.town_id,
            "village_id": place.village_id,
            "secret_hash": hash_secret(new_secret()),
            "short_code": new_short_code(),
            "submission_hash": None,
            "walk_in": True,
            "now": utcnow(),
        }
        try:
            with db.session.begin_nested():
                inserted = registration_services.insert_registration(values)
                if inserted is not None:
                    db.session.execute(
                        update(Registration)
                        .where(Registration.id == inserted[0])
                        .values(cadre_id=cadre.id)
                        .execution_options(synchronize_session=False)
                    )
        except IntegrityError:
            existing = _standing_registration_of(activity.id, cadre)
            if existing is not None:
                return existing
            continue  # a short-code collision: try another
        if inserted is None:
            raise registration_services.RegistrationRefused(_("名额已满。"))
        return db.session.get_one(Registration, inserted[0])
    raise RuntimeError("could not register a cadre after several short-code collisions")


# --- checking in ------------------------------------------------------------------------


def _door_cadre(user: User, activity: Activity, cadre_id: int) -> Cadre:
    cadre = invited_cadre(activity, cadre_id)
    if cadre is None:
        raise services.CheckInProblem(_("此人不在本培训的参训干部名单中。"), kind="not_invited")
    town_id = roster_door_town_id(user, activity)
    if (
        town_id is not None
        and db.session.scalar(
            select(Cadre.id).where(Cadre.id == cadre.id, invited_filter(activity, town_id))
        )
        is None
    ):
        raise NotYourTown  # invited as a cadre of another town (at the time of the training)
    return cadre


def check_in_cadre(
    user: User,
    activity: Activity,
    session: ActivitySession,
    cadre_id: int,
    *,
    nonce: str | None = None,
    scanned_at: datetime | None = None,
    override_reason: str | None = None,
) -> services.ScanAnswer:
    """Check in an invited cadre at ``session`` from the roster (the door's list).

    The cadre's registration is used, or made now in this transaction; the check-in follows
    the scan rules (a waitlisted registration is refused, as at a scan). A repeated nonce
    gets the stored answer. Raises ``CheckInProblem`` (not invited), ``NotYourTown`` and
    ``RegistrationRefused``. The caller has checked ``can_work_roster_door``.
    Outside the session's check-in window the answer is ``not_now`` and nobody is
    registered, unless an organizer gives ``override_reason`` (``OverrideNotAllowed`` for
    anyone else).
    """
    if override_reason is not None and not can_override_checkin_window(user, activity):
        raise services.OverrideNotAllowed
    begin_write()  # SQLite: decide on the latest state, under the write lock
    cadre = _door_cadre(user, activity, cadre_id)
    # Outside the session's check-in window nobody is registered: only the log is written.
    return services.check_in_at_door(
        user,
        session,
        lambda: (registration_for_cadre(activity, cadre), CheckInMethod.ROSTER),
        CheckInMethod.ROSTER,
        nonce=nonce,
        scanned_at=scanned_at,
        override_reason=override_reason,
    )


# --- self check-in ----------------------------------------------------------------------

ID_TAIL_LENGTH = 6
_ID_TAIL_RE = re.compile(r"[0-9]{5}[0-9X]")
_SMS_CODE_RE = re.compile(r"[0-9]{6}")


@dataclass(frozen=True)
class PhoneAndIdTail:
    """A roster cadre's phone and the last 6 characters of the ID number on the roster:
    something a colleague typing the phone (代签) does not know."""

    phone: str
    id_tail: str

    def not_proven(self) -> services.SelfCheckInRefused:
        # One answer for a phone not on the list, a cadre without an ID number and a wrong
        # tail: the page must not tell a stranger who is on the roster.
        return services.SelfCheckInRefused(
            _(
                "手机号与身份证号后 6 位不符，或不在本次培训的参训干部名单中。"
                "花名册没有您身份证号的，请用短信验证码签到，或到签到台签到。"
            ),
            field="id_tail",
        )


@dataclass(frozen=True)
class SmsCode:
    """A roster cadre's phone and the code sent to it for this session
    (``send_self_check_in_code``): for cadres the roster has no ID number for, or who
    prefer it. The SMS reaches the person holding the roster phone, not a colleague."""

    phone: str
    code: str

    def not_proven(self) -> services.SelfCheckInRefused:
        # (Only after a right code: a phone not on the list is sent none, so this is a
        # cadre taken off the roster after asking, or a lucky guess.)
        return services.SelfCheckInRefused(
            _("此手机号不在本次培训的参训干部名单中，请到签到台签到。"), field="phone"
        )


CadreProof = PhoneAndIdTail | SmsCode


def self_check_in_scope(session: ActivitySession) -> str:
    """A self check-in code is good for its session only."""
    return f"s{session.id}"


def _roster_phone(text: str) -> str:
    try:
        return normalize_phone(text)
    except IdentityError as exc:
        raise services.SelfCheckInRefused(str(exc), field="phone") from None


def _invited_cadre_with_phone(activity: Activity, phone: str) -> Cadre | None:
    return db.session.scalar(invited_cadres(activity).where(Cadre.phone == phone))


def _cadre_by_id_tail(session: ActivitySession, proof: PhoneAndIdTail) -> Cadre | None:
    phone = _roster_phone(proof.phone)
    tail = re.sub(r"\s", "", unicodedata.normalize("NFKC", proof.id_tail or "")).upper()
    if not _ID_TAIL_RE.fullmatch(tail):
        raise services.SelfCheckInRefused(
            _("请填写身份证号的后 6 位（最后一位可能是 X）。"), field="id_tail"
        )
    cadre = _invited_cadre_with_phone(session.activity, phone)
    if cadre is None or not cadre.id_number:
        return None
    return cadre if hmac.compare_digest(cadre.id_number[-ID_TAIL_LENGTH:], tail) else None


def _cadre_by_sms_code(session: ActivitySession, proof: SmsCode) -> Cadre | None:
    """Checks the code first, for every phone alike (a try is counted, the same answers):
    whether the phone is a cadre's shows only to whoever holds the code. Raises
    ``verification.VerificationRefused`` for a wrong, used or expired code: the caller
    must let the transaction commit (the try counts). The code is consumed in the
    caller's transaction, with the check-in."""
    phone = _roster_phone(proof.phone)
    code = re.sub(r"\s", "", unicodedata.normalize("NFKC", proof.code or ""))
    if not _SMS_CODE_RE.fullmatch(code):
        raise services.SelfCheckInRefused(_("请填写短信中的 6 位验证码。"), field="code")
    verification.check_code(
        phone, VerificationPurpose.SELF_CHECK_IN, code, scope=self_check_in_scope(session)
    )
    return _invited_cadre_with_phone(session.activity, phone)


# The proofs a roster cadre may give, each checked by its function (the cadre, or None:
# not proven, answered with the proof's one ``not_proven`` refusal).
_CADRE_PROOFS: dict[type, Callable[[ActivitySession, Any], Cadre | None]] = {
    PhoneAndIdTail: _cadre_by_id_tail,
    SmsCode: _cadre_by_sms_code,
}


def _cadre_proven_by(session: ActivitySession, proof: CadreProof) -> Cadre:
    check = _CADRE_PROOFS.get(type(proof))
    if check is None:
        raise TypeError(f"not a cadre's self check-in proof: {proof!r}")
    cadre = check(session, proof)
    if cadre is None:
        raise proof.not_proven()
    return cadre


def send_self_check_in_code(session: ActivitySession, phone_text: str) -> None:
    """A cadre asks for an SMS code to check themself in at ``session`` (``SmsCode``).

    No enumeration: the answer and the per-phone limits are the same whether or not the
    phone is an invited cadre's; the SMS is written only when it is. Outside the session's
    check-in window nothing is asked (``SelfCheckInRefused`` with the session's time).
    Raises ``SelfCheckInRefused`` (bad phone, not now) and ``VerificationRefused`` (the
    phone asked too often). Flushes only."""
    phone = _roster_phone(phone_text)
    begin_write()
    outside = windows.not_now(session, utcnow())
    if outside is not None:
        raise services.SelfCheckInRefused(outside.message())
    invited = _invited_cadre_with_phone(session.activity, phone) is not None
    verification.request_code(
        phone,
        VerificationPurpose.SELF_CHECK_IN,
        scope=self_check_in_scope(session),
        send=invited,
    )


def cadre_self_check_in(session: ActivitySession, proof: CadreProof) -> services.ScanAnswer:
    """A roster cadre checks themself in at ``session`` (from ``services.self_code_session``).

    ``proof`` shows it is the person; their registration is used, or made now. Raises
    ``SelfCheckInRefused`` otherwise (a wrong SMS code: ``VerificationRefused``, whose try
    the caller commits). Outside the session's check-in window the proof is not even
    looked at (an SMS code is neither tried nor used). The answer names the person (pages
    mask the name).
    """
    begin_write()
    activity = session.activity
    outside = windows.not_now(session, utcnow())
    if outside is not None:  # the page shows the session's time instead of the form
        raise services.SelfCheckInRefused(outside.message())
    cadre = _cadre_proven_by(session, proof)
    try:
        registration = registration_for_cadre(activity, cadre)
    except registration_services.RegistrationRefused as exc:
        raise services.SelfCheckInRefused(exc.message) from None
    return services.check_in_at_door(None, session, registration, CheckInMethod.SELF)


# --- searching ---------------------------------------------------------------------------


def _holds_registration(activity: Activity):
    """SQL: this cadre (``Cadre``) holds a standing registration for ``activity``, linked to
    them or made with their phone (two EXISTS, each served by its partial unique index)."""
    standing = and_(Registration.activity_id == activity.id, _STANDING)
    return or_(
        exists().where(standing, Registration.cadre_id == Cadre.id),
        exists().where(standing, Registration.phone == Cadre.phone),
    )


def _checked_in_by_registration(registration_ids: list[int]) -> dict[int, dict[str, str]]:
    checked: dict[int, dict[str, str]] = {}
    if not registration_ids:
        return checked
    for registration_id, session_id, at in db.session.execute(
        select(CheckIn.registration_id, CheckIn.session_id, CheckIn.checked_in_at).where(
            CheckIn.registration_id.in_(registration_ids), CheckIn.undone_at.is_(None)
        )
    ):
        checked.setdefault(registration_id, {})[str(session_id)] = at.isoformat()
    return checked


def registration_entry(
    registration: Registration, cadre: Cadre | None, village: str, checked_in: dict[str, str]
) -> dict:
    """A registration as the door lists it (search, page, offline roster)."""
    return {
        "kind": "registration",
        "registration_id": registration.id,
        "cadre_id": registration.cadre_id,
        "name": registration.name,
        "village": village,
        "phone_masked": mask_phone(registration.phone),
        "id_masked": mask_id_number(cadre.id_number) if cadre is not None else "",
        "short_code": registration.short_code,
        "status": registration.effective_status,
        "checked_in": checked_in,
    }


def cadre_entry(cadre: Row) -> dict:
    """An invited cadre holding no registration, as the door lists them (masked only); a row
    of ``_cadres_without_registration``."""
    return {
        "kind": "cadre",
        "registration_id": None,
        "cadre_id": cadre.id,
        "name": cadre.name,
        "village": cadre.village,
        "town": cadre.town,
        "posts": cadre.posts,
        "phone_masked": mask_phone(cadre.phone),
        "id_masked": mask_id_number(cadre.id_number),
        "short_code": None,
        "status": None,
        "checked_in": {},
    }


def _registration_entries(activity: Activity, stmt: Select) -> list[dict]:
    """Door entries of the registrations ``stmt`` selects (Registration, Cadre or None); the
    village is the registration's, else the cadre's at the time of the training (else now)."""
    served = training_periods(activity)
    rows = db.session.execute(
        stmt.add_columns(Village.name)
        .outerjoin(served, served.c.cadre_id == Cadre.id)
        .outerjoin(
            Village,
            Village.id
            == func.coalesce(Registration.village_id, served.c.village_id, Cadre.village_id),
        )
        .options(selectinload(Registration.activity))
    ).all()
    checked = _checked_in_by_registration([row[0].id for row in rows])
    return [
        registration_entry(registration, cadre, village or "", checked.get(registration.id, {}))
        for registration, cadre, village in rows
    ]


def _registrations_of(activity: Activity, town_id: int | None) -> Select:
    stmt = (
        select(Registration, Cadre)
        .outerjoin(Cadre, Cadre.id == Registration.cadre_id)
        .where(Registration.activity_id == activity.id)
        .order_by(Registration.id)
    )
    if town_id is not None:
        stmt = stmt.where(invited_filter(activity, town_id))
    return stmt


def _cadres_without_registration(activity: Activity, town_id: int | None) -> Select:
    """Rows (no ORM objects: a district has thousands) for ``cadre_entry``; town, village and
    posts are the cadre's at the time of the training."""
    invited = invited_periods(activity, town_id)
    return (
        select(
            Cadre.id,
            Cadre.name,
            invited.c.posts,
            Cadre.phone,
            Cadre.id_number,
            Village.name.label("village"),
            Town.name.label("town"),
        )
        .select_from(invited)
        .join(Cadre, Cadre.id == invited.c.cadre_id)
        .join(Village, Village.id == invited.c.village_id)
        .join(Town, Town.id == invited.c.town_id)
        .where(~_holds_registration(activity))
        .order_by(invited.c.town_id, invited.c.village_id, Cadre.id)
    )


@dataclass
class DoorSearch:
    """What a door search found: registrations first, then cadres without one."""

    query: DoorQuery
    entries: list[dict]
    # A coordinator's search also matched invited cadres of other towns, left out.
    withheld: bool = False

    @property
    def hint(self) -> str | None:
        if self.query.kind == "digits":
            return _("手机号请输入后 4 位或完整号码；身份证号请输入后 4 位。")
        if self.withheld:
            return _("其他镇街的干部不在您的名单中，请到其所在镇街的签到台签到。")
        return None

    def as_json(self) -> dict:
        return {"query": self.query.kind, "entries": self.entries, "hint": self.hint}


def door_town_scope(user: User, activity: Activity, town_id: int | None) -> int | None:
    """The town a door list shows: ``town_id`` when asked (door staff may pick any), else
    the user's own for a coordinator (None: every invited town). A coordinator asking for
    another town is refused (``NotYourTown``)."""
    own = roster_door_town_id(user, activity)
    if own is not None and town_id is not None and town_id != own:
        raise NotYourTown
    return own if own is not None else town_id


def search_door(
    user: User,
    activity: Activity,
    text: str,
    *,
    town_id: int | None = None,
    limit: int = SEARCH_LIMIT,
) -> DoorSearch:
    """Registrations and invited cadres matching ``text`` (``person_query``), as door entries.

    Door staff see every registration and invited cadre (of ``town_id`` when given); a
    coordinator sees the cadres of their own town and the registrations linked to them.
    The caller has checked ``can_work_roster_door``.
    """
    town = door_town_scope(user, activity, town_id)
    query = parse_door_query(text)
    if query.kind in ("empty", "digits"):
        return DoorSearch(query, [])
    registrations = _registrations_of(activity, town).where(
        matches_query(query, Registration.name, Registration.phone, Cadre.id_number)
    )
    entries = _registration_entries(activity, registrations.limit(limit))
    cadres = db.session.execute(
        _cadres_without_registration(activity, town)
        .where(matches_query(query, Cadre.name, Cadre.phone, Cadre.id_number))
        .limit(max(limit - len(entries), 0))
    ).all()
    entries += [cadre_entry(c) for c in cadres]
    withheld = False
    if town is not None and roster_door_town_id(user, activity) is not None:
        elsewhere = invited_periods(activity)
        others = (
            select(Cadre.id)
            .join(elsewhere, elsewhere.c.cadre_id == Cadre.id)
            .where(
                elsewhere.c.town_id != town,
                matches_query(query, Cadre.name, Cadre.phone, Cadre.id_number),
            )
        )
        withheld = db.session.scalar(others.limit(1)) is not None
    return DoorSearch(query, entries, withheld)


def door_list(
    user: User, activity: Activity, *, town_id: int | None = None, limit: int = 500
) -> list[dict]:
    """Every registration linked to an invited town's cadre and every invited cadre without
    one (the training's attendance list), for ``user``'s scope (see ``search_door``)."""
    town = door_town_scope(user, activity, town_id)
    stmt = _registrations_of(activity, town).where(Registration.cadre_id.is_not(None))
    entries = _registration_entries(activity, stmt.limit(limit))
    cadres = db.session.execute(_cadres_without_registration(activity, town).limit(limit)).all()
    return entries + [cadre_entry(c) for c in cadres]


# --- the offline roster --------------------------------------------------------------------


def add_roster_cadres(roster: dict, activity: Activity) -> dict:
    """Put the invited cadres into the offline roster (``services.roster``): the village and
    masked ID number of registrations linked to a cadre (found by the ID's last 4), and
    the invited cadres holding no registration. Masked values only: never a full phone or
    ID number, and no hash of one (with the mask beside it, a phone's hash gives the
    number away in 10,000 tries)."""
    served = training_periods(activity)
    linked = {
        row.id: row
        for row in db.session.execute(
            select(Registration.id, Registration.cadre_id, Cadre.id_number, Village.name)
            .join(Cadre, Cadre.id == Registration.cadre_id)
            .outerjoin(served, served.c.cadre_id == Cadre.id)
            .outerjoin(
                Village,
                Village.id
                == func.coalesce(Registration.village_id, served.c.village_id, Cadre.village_id),
            )
            .where(Registration.activity_id == activity.id)
        )
    }
    for registration in roster["registrations"]:
        row = linked.get(registration["id"])
        registration["cadre_id"] = row.cadre_id if row else None
        registration["village"] = row.name if row else ""
        registration["id_masked"] = mask_id_number(row.id_number) if row else ""
    roster["cadres"] = [
        cadre_entry(c) for c in db.session.execute(_cadres_without_registration(activity, None))
    ]
    return roster
