"""The registration predicates (models/registration.py) answer alike in Python and in SQL,
and every status has its label."""

from __future__ import annotations

import itertools

import pytest
from flask_babel import force_locale
from sqlalchemy import select, update

from sciweek.extensions import db
from sciweek.models import (
    Activity,
    ActivityKind,
    ActivityStatus,
    Registration,
    RegistrationStatus,
)
from sciweek.registration.labels import STATUS_LABELS, status_filter_choices, ticket_status_label

RULES = ("is_active", "is_confirmed", "is_waitlisted", "is_standing", "counts_for_coverage")

# What each rule answers for (registration status, activity status).
EXPECTED = {
    "is_active": {
        (RegistrationStatus.CONFIRMED, ActivityStatus.PUBLISHED): True,
        (RegistrationStatus.WAITLISTED, ActivityStatus.PUBLISHED): True,
        (RegistrationStatus.CANCELLED, ActivityStatus.PUBLISHED): False,
        (RegistrationStatus.CONFIRMED, ActivityStatus.CANCELLED): False,
        (RegistrationStatus.WAITLISTED, ActivityStatus.CANCELLED): False,
        (RegistrationStatus.CANCELLED, ActivityStatus.CANCELLED): False,
    },
    "is_confirmed": {
        (RegistrationStatus.CONFIRMED, ActivityStatus.PUBLISHED): True,
        (RegistrationStatus.CONFIRMED, ActivityStatus.CANCELLED): False,
    },
    "is_waitlisted": {
        (RegistrationStatus.WAITLISTED, ActivityStatus.PUBLISHED): True,
        (RegistrationStatus.WAITLISTED, ActivityStatus.CANCELLED): False,
    },
    # The registration's own status only: what the partial unique indexes count.
    "is_standing": {
        (RegistrationStatus.CONFIRMED, ActivityStatus.CANCELLED): True,
        (RegistrationStatus.CANCELLED, ActivityStatus.PUBLISHED): False,
    },
}


def test_rules_answer_alike_in_python_and_sql(app, make):
    activities = {
        status: make.activity(status=ActivityStatus.PUBLISHED, kind=ActivityKind.TRAINING)
        for status in (ActivityStatus.PUBLISHED, ActivityStatus.CANCELLED)
    }
    ids = {}
    for n, (reg_status, act_status) in enumerate(itertools.product(RegistrationStatus, activities)):
        registration = Registration(
            activity=activities[act_status],
            name=f"甲{n}",
            phone=f"1380013{n:04d}",
            status=reg_status,
            secret_hash=f"{n:064d}",
            short_code=f"A{n:05d}"[:6],
        )
        db.session.add(registration)
        db.session.flush()
        ids[registration.id] = (reg_status, act_status)
    db.session.execute(
        update(Activity)
        .where(Activity.id == activities[ActivityStatus.CANCELLED].id)
        .values(status=ActivityStatus.CANCELLED, cancel_reason="天气原因")
    )
    db.session.commit()
    db.session.expire_all()

    for rule in RULES:
        in_sql = set(db.session.scalars(select(Registration.id).where(getattr(Registration, rule))))
        for registration in db.session.scalars(select(Registration)):
            in_python = bool(getattr(registration, rule))
            case = ids[registration.id]
            assert in_python == (registration.id in in_sql), (rule, case)
            if case in EXPECTED.get(rule, {}):
                assert in_python is EXPECTED[rule][case], (rule, case)


def test_statuses_come_back_as_enum_members_with_the_stored_strings(app, make):
    activity = make.activity()
    db.session.add(
        Registration(
            activity=activity,
            name="乙",
            phone="13800138000",
            status="waitlisted",
            secret_hash="f" * 64,
            short_code="ABCDEF",
        )
    )
    db.session.commit()
    db.session.expire_all()
    assert db.session.scalar(select(Registration.status)) is RegistrationStatus.WAITLISTED
    stored = db.session.execute(db.text("SELECT status FROM registrations")).scalar_one()
    assert stored == "waitlisted"


@pytest.mark.parametrize("locale", ["zh", "en"])
def test_every_status_has_a_label(app, locale):
    with app.test_request_context(), force_locale(locale):
        assert set(STATUS_LABELS) == set(RegistrationStatus)
        labels = [str(label) for _value, label in status_filter_choices()]
        assert len(set(labels)) == len(labels) == len(RegistrationStatus) + 1
        for status in RegistrationStatus:
            assert ticket_status_label(status, 3)
        if locale == "en":
            assert all(label.isascii() for label in labels)
