"""The paper 签到表: who is on a session's sheet, and typing the signed sheet in afterwards.

A session's sheet lists its people in one order (``sheet_rows``): the printed PDF
(``manage.signin_sheet``) and the entry page number them alike, so whoever types the sheet
in goes down the same 序号. Entering the sheet (``enter_paper_sheet``) checks the ticked
people in with the method ``paper``, at the session's start time, noting who entered them,
and logs each change in the scan log. It is allowed from the session's start until
``SCIWEEK_PAPER_ENTRY_DAYS`` after its end.

Live check-ins made otherwise (scan, self check-in, walk-in) are never touched here: the
sheet only adds to them. Unticking takes back a paper check-in only, and only one the
person saving had seen ticked: a paper check-in somebody else entered meanwhile stays.
One live check-in per person and session is the database's guarantee (``uq_checkins_live``),
so two people saving the same sheet at once make one check-in each person.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import signals
from ..database import begin_write
from ..extensions import db
from ..i18n import format_datetime
from ..identity import mask_phone, mask_short_code
from ..inputs import INT32_MAX
from ..models import (
    Activity,
    ActivitySession,
    ActivityStatus,
    Cadre,
    CheckIn,
    CheckInMethod,
    Registration,
    RegistrationStatus,
    ScanResult,
    User,
    utcnow,
)
from ..registration.services import RegistrationRefused
from ..training.invitations import invited_cadre, invited_cadres, villages_at_training
from . import roster_door
from .services import CheckInProblem, check_in_at_door, undo_check_in

# --- who is on the sheet -------------------------------------------------------------


def invited_roster_cadres(activity: Activity) -> list[Cadre]:
    """The roster cadres a training is for (the towns it names, or the whole district:
    ``training.invitations``), and the cadres linked to its confirmed registrations, whether
    or not they registered online. Not for other kinds of activity."""
    invited = invited_cadres(activity).options(selectinload(Cadre.village)).order_by(Cadre.id)
    linked = (
        select(Cadre)
        .join(Registration, Registration.cadre_id == Cadre.id)
        .where(
            Registration.activity_id == activity.id,
            Registration.status == RegistrationStatus.CONFIRMED,
        )
        .options(selectinload(Cadre.village))
        .order_by(Cadre.id)
    )
    found = {c.id: c for c in db.session.scalars(invited)}
    found.update((c.id, c) for c in db.session.scalars(linked))
    return list(found.values())


@dataclass
class SheetRow:
    """One line of a session's 签到表."""

    number: int  # 序号
    key: str  # "r<registration id>", or "c<cadre id>" for a cadre without a registration
    name: str
    village: str
    phone_masked: str
    short_code_masked: str
    # The live check-in at this session, if any: how and when.
    method: str | None = None
    checked_in_at: datetime | None = None

    @property
    def checked_in(self) -> bool:
        return self.method is not None

    @property
    def on_paper(self) -> bool:
        return self.method == CheckInMethod.PAPER


def _sheet_registrations(activity: Activity) -> list[Registration]:
    # Registration.status, not the effective status: the held sessions of an activity
    # cancelled later still have their sheet (see manage.services.cancel_activity).
    return list(
        db.session.scalars(
            select(Registration)
            .where(
                Registration.activity_id == activity.id,
                Registration.status == RegistrationStatus.CONFIRMED,
            )
            .options(
                selectinload(Registration.village),
                selectinload(Registration.town),
            )
        )
    )


def _live_checkins(session: ActivitySession) -> dict[int, tuple[str, datetime]]:
    rows = db.session.execute(
        select(CheckIn.registration_id, CheckIn.method, CheckIn.checked_in_at).where(
            CheckIn.session_id == session.id, CheckIn.undone_at.is_(None)
        )
    )
    return {row.registration_id: (row.method, row.checked_in_at) for row in rows}


def _place_of(registration: Registration, cadre: Cadre | None, villages: dict[int, str]) -> str:
    if registration.village is not None:
        return registration.village.name
    if cadre is not None:
        return villages.get(cadre.id, cadre.village.name)
    return registration.town.name if registration.town is not None else ""


def sheet_rows(activity: Activity, session: ActivitySession) -> list[SheetRow]:
    """The people of ``session``'s 签到表, numbered, by village then name.

    Confirmed registrations, and for a training the invited roster cadres who hold none
    (``invited_roster_cadres``); each with their live check-in at the session, if any.
    """
    registrations = _sheet_registrations(activity)
    cadres = (
        {c.id: c for c in invited_roster_cadres(activity)} if activity.counts_for_coverage else {}
    )
    # Each cadre's village at the time of the training (they may have moved since).
    villages = villages_at_training(activity, list(cadres))
    live = _live_checkins(session)
    rows = []
    for r in registrations:
        method, at = live.get(r.id, (None, None))
        rows.append(
            SheetRow(
                number=0,
                key=f"r{r.id}",
                name=r.name,
                village=_place_of(r, cadres.get(r.cadre_id) if r.cadre_id else None, villages),
                phone_masked=mask_phone(r.phone),
                short_code_masked=mask_short_code(r.short_code),
                method=method,
                checked_in_at=at,
            )
        )
    # A cadre holds a registration when it is linked to them or made with their phone.
    registered = {r.cadre_id for r in registrations if r.cadre_id is not None}
    registered_phones = {r.phone for r in registrations}
    rows.extend(
        SheetRow(
            number=0,
            key=f"c{c.id}",
            name=c.name,
            village=villages.get(c.id, c.village.name),
            phone_masked=mask_phone(c.phone),
            short_code_masked="",
        )
        for c in cadres.values()
        if c.id not in registered and not (c.phone and c.phone in registered_phones)
    )
    rows.sort(key=lambda row: (row.village, row.name, row.key))
    for number, row in enumerate(rows, start=1):
        row.number = number
    return rows


# --- typing the signed sheet in -------------------------------------------------------------


class PaperEntryRefused(Exception):
    """The sheet cannot be entered (now, for this session); the message is for people."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def paper_entry_refusal(session: ActivitySession, now: datetime, days: int) -> str | None:
    """Why ``session``'s paper sheet cannot be entered at ``now``, or None when it can.

    From the session's start (a sheet of a session to come holds no signatures yet) until
    ``days`` after its end; not for a cancelled session or an activity never published.
    """
    if session.is_cancelled:
        return _("该场次已取消，不能录入签到。")
    if session.activity.status == ActivityStatus.DRAFT:
        return _("活动尚未发布，不能录入签到。")
    if not session.has_begun(now):
        return _(
            "场次尚未开始（%(time)s 开始），不能录入纸质签到表。",
            time=format_datetime(session.starts_at),
        )
    if now > session.ends_at + timedelta(days=days):
        return _("场次结束已超过 %(days)s 天，不能再补录纸质签到表。", days=days)
    return None


_KEY_RE = re.compile(r"([rc])([0-9]{1,10})")


def parse_row_keys(values: list[str]) -> set[str] | None:
    """Row keys as the entry page sends them ("r12", "c7"); None when one is malformed."""
    keys = set()
    for value in values:
        match = _KEY_RE.fullmatch(value.strip())
        if match is None or int(match.group(2)) > INT32_MAX:
            return None
        keys.add(match.group(0))
    return keys


@dataclass
class PaperEntryResult:
    added: int = 0  # checked in from the sheet now
    removed: int = 0  # paper check-ins taken back
    kept: int = 0  # ticked, and already checked in (scan, self check-in, or on paper)


def registration_for_roster_cadre(activity: Activity, cadre_id: int) -> Registration:
    """The registration through which an invited roster cadre listed without one is checked
    in: made now, linked to the cadre, in this transaction (or the one they made online
    meanwhile: ``roster_door.registration_for_cadre``). A cadre no longer invited: the line
    is stale."""
    cadre = invited_cadre(activity, cadre_id)
    if cadre is None:
        raise PaperEntryRefused(_("名单已变化，请刷新页面后重新勾选。"))
    try:
        return roster_door.registration_for_cadre(activity, cadre)
    except RegistrationRefused as exc:
        raise PaperEntryRefused(exc.message) from None


def _eligible(activity: Activity, ids: set[int]) -> dict[int, Registration]:
    if not ids:
        return {}
    found = db.session.scalars(
        select(Registration).where(
            Registration.id.in_(sorted(ids)),
            Registration.activity_id == activity.id,
            Registration.status == RegistrationStatus.CONFIRMED,
        )
    )
    return {r.id: r for r in found}


def _undo_paper_checkin(user: User, session: ActivitySession, registration_id: int) -> bool:
    """Take back the live paper check-in of a registration at ``session``, if it has one
    (``services.undo_check_in``: marked undone by ``user``, logged)."""
    checkin = db.session.scalar(
        select(CheckIn).where(
            CheckIn.registration_id == registration_id,
            CheckIn.session_id == session.id,
            CheckIn.undone_at.is_(None),
            CheckIn.method == CheckInMethod.PAPER,
        )
    )
    if checkin is None:
        return False
    try:
        undo_check_in(checkin, user)
    except CheckInProblem:  # undone by someone else since the look-up
        return False
    return True


def enter_paper_sheet(
    user: User,
    session: ActivitySession,
    ticked: set[str],
    seen_on_paper: set[str],
    *,
    days: int,
    now: datetime | None = None,
) -> PaperEntryResult:
    """Record ``session``'s signed paper sheet, entered by ``user``: one transaction.

    ``ticked``: the row keys (``SheetRow.key``) ticked on the entry page; ``seen_on_paper``:
    those the page showed as checked in on paper when it was opened. The ticked who are not
    checked in are checked in (method ``paper``, at the session's start); paper check-ins
    that were shown and are no longer ticked are undone. Raises PaperEntryRefused outside
    the entry period (``paper_entry_refusal``) or when a row is no longer on the sheet.
    """
    begin_write()  # SQLite: decide on the latest state, under the write lock
    now = now or utcnow()
    refusal = paper_entry_refusal(session, now, days)
    if refusal is not None:
        raise PaperEntryRefused(refusal)
    activity = session.activity
    registration_ids = {int(k[1:]) for k in ticked | seen_on_paper if k[0] == "r"}
    registrations = _eligible(activity, registration_ids)
    if len(registrations) != len(registration_ids):
        raise PaperEntryRefused(_("名单已变化，请刷新页面后重新勾选。"))
    for key in sorted(k for k in ticked if k[0] == "c"):
        registration = registration_for_roster_cadre(activity, int(key[1:]))
        registrations[registration.id] = registration
        ticked = (ticked - {key}) | {f"r{registration.id}"}

    result = PaperEntryResult()
    for key in sorted(ticked, key=lambda k: int(k[1:])):
        registration = registrations[int(key[1:])]
        answer = check_in_at_door(
            user, session, registration, CheckInMethod.PAPER, on_paper_at=session.starts_at
        )
        if answer.result == ScanResult.OK:
            result.added += 1
        else:  # already checked in (scanned, self check-in, or on paper)
            result.kept += 1
    unticked = {int(k[1:]) for k in seen_on_paper - ticked if k[0] == "r"}
    for registration_id in sorted(unticked):
        if _undo_paper_checkin(user, session, registration_id):
            result.removed += 1
    db.session.flush()
    if result.added:  # (undo_check_in signals its own)
        signals.checkins_changed.send(session)
    return result
