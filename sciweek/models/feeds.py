"""Change counters of the calendar feeds."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from .types import UTCDateTime


class FeedChange(db.Model):  # type: ignore[name-defined]  # as the other models (baseline)
    """How often what a group of feeds shows has changed, and when it last did.

    ``scope`` is ``public`` (every activity feed and public feed: activities, their
    sessions, towns, villages, campaigns, departments) or ``user:<id>`` (what only that
    user's personal feed adds: their registrations, role and assignments). Raised in the
    transaction of the change itself (``feed_changes.py``), so a feed's ETag costs one
    indexed read. A missing row means no change was ever counted: counter 0.
    """

    __tablename__ = "feed_changes"
    __table_args__ = (CheckConstraint("counter >= 0", name="counter"),)

    scope: Mapped[str] = mapped_column(String(40), primary_key=True)
    counter: Mapped[int] = mapped_column(BigInteger, default=0)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime)
