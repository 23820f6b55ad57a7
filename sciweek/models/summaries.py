"""What happened at an activity, recorded by its organizer afterwards (活动总结).

Outreach fairs (most 科技下乡 activities) take no registrations, so the people they reached
are known only from the summary: the annual assessment and the dashboard read them here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .accounts import User
from .activities import Activity
from .types import UTCDateTime, utcnow

# A sane bound for the counts an organizer types: a district of ~500,000 people.
SUMMARY_COUNT_MAX = 1_000_000
SUMMARY_PHOTOS_MAX = 9
SUMMARY_EXPERTS_MAX = 50


def _count_check(column: str) -> CheckConstraint:
    return CheckConstraint(f"{column} >= 0 AND {column} <= {SUMMARY_COUNT_MAX}", name=column)


class ActivitySummary(db.Model):  # type: ignore[name-defined]  # as the other models (baseline)
    """One summary per activity; edited in place (``updated_at``/``updated_by``)."""

    __tablename__ = "activity_summaries"
    __table_args__ = (
        _count_check("people_reached"),
        _count_check("materials_distributed"),
        _count_check("consultations"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), unique=True
    )
    # 受益群众人次: everyone reached, registered or not.
    people_reached: Mapped[int] = mapped_column(Integer, default=0)
    # 发放资料份数
    materials_distributed: Mapped[int] = mapped_column(Integer, default=0)
    # 咨询人次
    consultations: Mapped[int] = mapped_column(Integer, default=0)
    text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    activity: Mapped[Activity] = relationship()
    updated_by: Mapped[User | None] = relationship()
    experts: Mapped[list[SummaryExpert]] = relationship(
        back_populates="summary", order_by="SummaryExpert.position", cascade="all, delete-orphan"
    )
    photos: Mapped[list[SummaryPhoto]] = relationship(
        back_populates="summary", order_by="SummaryPhoto.position", cascade="all, delete-orphan"
    )


class SummaryExpert(db.Model):  # type: ignore[name-defined]  # as the other models (baseline)
    """An expert present at the activity: name, unit (单位) and field (专业领域)."""

    __tablename__ = "summary_experts"

    id: Mapped[int] = mapped_column(primary_key=True)
    summary_id: Mapped[int] = mapped_column(
        ForeignKey("activity_summaries.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer, default=0)
    name: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(100), default="")
    field: Mapped[str] = mapped_column(String(100), default="")

    summary: Mapped[ActivitySummary] = relationship(back_populates="experts")


class SummaryPhoto(db.Model):  # type: ignore[name-defined]  # as the other models (baseline)
    """A photo of the activity, kept as a JPEG in the file storage under ``storage_key``."""

    __tablename__ = "summary_photos"
    __table_args__ = (
        UniqueConstraint("summary_id", "position", name="uq_summary_photos_position"),
        CheckConstraint(f"position >= 0 AND position < {SUMMARY_PHOTOS_MAX}", name="position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    summary_id: Mapped[int] = mapped_column(
        ForeignKey("activity_summaries.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size_bytes: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    summary: Mapped[ActivitySummary] = relationship(back_populates="photos")
