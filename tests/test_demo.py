from sqlalchemy import func, select

from sciweek.extensions import db
from sciweek.models import Activity, Campaign, Department, Registration, Town, User


def test_seed_demo_is_idempotent_and_complete(runner):
    first = runner.invoke(args=["seed-demo"])
    assert first.exit_code == 0, first.output
    counts = lambda: {  # noqa: E731
        m.__name__: db.session.scalar(select(func.count()).select_from(m))
        for m in (Town, Department, Campaign, Activity, User, Registration)
    }
    before = counts()
    second = runner.invoke(args=["seed-demo"])
    assert second.exit_code == 0
    assert counts() == before
    assert before["Town"] == 8
    assert before["Department"] == 4
    assert before["Campaign"] == 2
    assert before["Activity"] >= 30
    kinds = set(db.session.scalars(select(Activity.kind).distinct()))
    assert kinds == {"outreach", "science_day", "st_week", "training"}
    roles = set(db.session.scalars(select(User.role)))
    assert {"admin", "organizer", "coordinator", "checker"} <= roles
    waitlisted = db.session.scalar(
        select(func.count()).select_from(Registration).where(Registration.status == "waitlisted")
    )
    assert waitlisted > 0
    nearly_full = db.session.scalars(
        select(Activity).where(
            Activity.capacity > Activity.confirmed_count, Activity.confirmed_count > 0
        )
    ).all()
    assert any(a.capacity - a.confirmed_count <= 3 for a in nearly_full)
    towns = set(db.session.scalars(select(Town.name)))
    assert {
        "城关镇",
        "东湖镇",
        "南岭镇",
        "柳林街道",
        "河西街道",
        "白沙乡",
        "石桥镇",
        "青山镇",
    } == towns


def test_seed_if_empty_leaves_existing_data(runner, make):
    make.town()
    result = runner.invoke(args=["seed-demo", "--if-empty"])
    assert "not loaded" in result.output
    assert db.session.scalar(select(func.count()).select_from(Activity)) == 0
