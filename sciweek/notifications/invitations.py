"""A coordinator invites the town's untrained cadres to an upcoming training (培训邀请).

From the town's untrained list (``training.coverage.untrained_cadres``, this year): the
cadres the chosen training is for (``training.invitations.invited_filter``: its roster
towns or the whole district, on the roster on its dates), with a mobile number, not
invited to it before. Each gets one SMS with the training's registration link and the
退订 link; the key ``invitation:a<act>:0:c<cadre>`` means nobody is invited to a
training twice, whoever sends and however often. Phones that opted out are skipped at
delivery (``optout``) and show so in the batch's delivery log.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from ..database import begin_write
from ..extensions import db
from ..identity import IdentityError, normalize_phone
from ..links import site_base_url
from ..models import (
    Activity,
    Cadre,
    InvitationBatch,
    NotificationEvent,
    OutboxMessage,
    Town,
    User,
    utcnow,
)
from ..training.coverage import UntrainedCadre, local_year_today, untrained_cadres
from ..training.invitations import invited_filter, trainings_inviting
from . import messages, optout, outbox

EVENT = NotificationEvent.INVITATION


class InvitationRefused(Exception):
    """Why these invitations cannot be sent (shown beside the training's choice)."""


def _nobody_to_invite() -> InvitationRefused:
    return InvitationRefused(_("没有需要邀请的干部：未训干部都已邀请过或没有手机号。"))


def upcoming_trainings(town_id: int, now: datetime | None = None) -> list[Activity]:
    """Published trainings for this town's cadres whose first session is still to come."""
    now = now or utcnow()
    return [a for a in trainings_inviting(town_id, now) if a.starts_at and a.starts_at > now]


def training_for_town(activity_id: int | None, town: Town, now: datetime | None = None) -> Activity:
    """The chosen training, when it is an upcoming one for ``town``; else refused."""
    for activity in upcoming_trainings(town.id, now):
        if activity.id == activity_id:
            return activity
    raise InvitationRefused(_("请选择一个面向本镇街干部、尚未开始的培训。"))


def invitation_key(activity_id: int, cadre_id: int) -> str:
    return outbox.dedupe_key(EVENT, f"c{cadre_id}", scope=f"a{activity_id}", version=0)


@dataclass(frozen=True)
class Invitee:
    cadre_id: int
    name: str
    village: str
    phone: str  # normalized


@dataclass(frozen=True)
class InvitationPlan:
    activity: Activity
    town: Town
    year: int
    invitees: list[Invitee]  # who would get an SMS now
    already_invited: int  # untrained cadres invited to this training before
    no_phone: int  # untrained cadres without a valid mobile number
    opted_out: int  # invitees whose phone opted out: skipped at delivery
    text: str  # the SMS as a phone shows it (the 退订 link differs per person)
    segments: int


def _phone(cadre: UntrainedCadre) -> str | None:
    try:
        return normalize_phone(cadre.phone or "")
    except IdentityError:
        return None


def invitation_params(activity: Activity) -> dict[str, str]:
    link = f"{site_base_url()}/activities/{activity.id}"
    return {**messages.activity_params(activity), "link": link}


def plan_invitations(activity: Activity, town: Town, year: int | None = None) -> InvitationPlan:
    """Who an invitation now would reach, and why the others would not (the preview)."""
    year = year or local_year_today()
    for_training = set(
        db.session.scalars(
            select(Cadre.id).where(invited_filter(activity), Cadre.town_id == town.id)
        )
    )
    untrained = [c for c in untrained_cadres(town.id, year) if c.cadre_id in for_training]
    keys = [invitation_key(activity.id, c.cadre_id) for c in untrained]
    invited_before: set[str] = set()
    for start in range(0, len(keys), 500):
        invited_before.update(
            db.session.scalars(
                select(OutboxMessage.dedupe_key).where(
                    OutboxMessage.dedupe_key.in_(keys[start : start + 500])
                )
            )
        )
    invitees, already, no_phone = [], 0, 0
    for cadre in untrained:
        phone = _phone(cadre)
        if invitation_key(activity.id, cadre.cadre_id) in invited_before:
            already += 1
        elif phone is None:
            no_phone += 1
        else:
            invitees.append(Invitee(cadre.cadre_id, cadre.name, cadre.village, phone))
    config = current_app.config
    rendered = messages.render(
        "invitation",
        invitation_params(activity),
        {"optout_url": optout.sample_link()},
        signature=config["SCIWEEK_SMS_SIGNATURE"],
        locale=config["BABEL_DEFAULT_LOCALE"],
    )
    return InvitationPlan(
        activity=activity,
        town=town,
        year=year,
        invitees=invitees,
        already_invited=already,
        no_phone=no_phone,
        opted_out=len(optout.opted_out_phones(i.phone for i in invitees)),
        text=rendered.text,
        segments=rendered.segments,
    )


def send_invitations(
    activity: Activity, town: Town, user: User, year: int | None = None
) -> InvitationBatch:
    """Write the batch and one invitation per cadre of ``plan_invitations`` (flushes only;
    the caller commits). A cadre invited meanwhile by someone else is not invited again."""
    begin_write()
    plan = plan_invitations(activity, town, year)
    if not plan.invitees:
        raise _nobody_to_invite()
    batch = InvitationBatch(activity_id=activity.id, town_id=town.id, created_by=user)
    db.session.add(batch)
    db.session.flush()
    params = invitation_params(activity)
    invited = sum(
        outbox.enqueue(
            EVENT,
            key=invitation_key(activity.id, invitee.cadre_id),
            recipient=invitee.phone,
            template="invitation",
            params=params,
            activity_id=activity.id,
            invitation_batch_id=batch.id,
        )
        for invitee in plan.invitees
    )
    if not invited:  # another coordinator's batch took them all meanwhile
        raise _nobody_to_invite()
    batch.invited = invited
    db.session.flush()
    return batch


def batches_of_town(town_id: int) -> list[InvitationBatch]:
    return list(
        db.session.scalars(
            select(InvitationBatch)
            .where(InvitationBatch.town_id == town_id)
            .order_by(InvitationBatch.created_at.desc(), InvitationBatch.id.desc())
        )
    )
