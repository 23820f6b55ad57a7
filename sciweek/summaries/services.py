"""Activity summaries (活动总结): when one may be recorded, saving it with its experts and
photos, removing and ordering photos.

Services flush and never commit (sciweek/transactions.py). A photo's files are written to
the storage before its row is flushed; if the flush fails they are removed at once, and if
the request's transaction rolls back later they are removed then (``after_rollback``), so
no file outlives the row it was written for. A removed photo's files go once the removal
has committed (``after_commit``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from ..database import begin_write
from ..extensions import db
from ..i18n import format_datetime
from ..models import (
    SUMMARY_EXPERTS_MAX,
    SUMMARY_PHOTOS_MAX,
    Activity,
    ActivitySummary,
    SummaryExpert,
    SummaryPhoto,
    User,
)
from ..storage import Storage, delete_quietly
from ..transactions import after_commit, after_rollback
from .photos import ProcessedPhoto

SUMMARY_TEXT_MAX = 5000


class SummaryRefused(Exception):
    """A summary change that is not allowed; ``field`` names the form field it concerns."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class ExpertData:
    name: str
    unit: str = ""
    field: str = ""


@dataclass(frozen=True)
class SummaryData:
    """What the organizer typed: the counts, the experts present and a short text."""

    people_reached: int
    materials_distributed: int
    consultations: int
    text: str = ""
    experts: list[ExpertData] = field(default_factory=list)


def summary_refusal(activity: Activity, now: datetime) -> str | None:
    """Why no summary can be recorded for ``activity`` yet, or None when it can: only once
    its first held (not cancelled) session has begun."""
    held = [s for s in activity.sessions if not s.is_cancelled]
    if not held:
        return _("该活动没有举行的场次，无法填写活动总结。")
    if not held[0].has_begun(now):
        return _(
            "活动总结在活动开始后才能填写（第一个场次 %(when)s 开始）。",
            when=format_datetime(held[0].starts_at),
        )
    return None


def summary_of(activity: Activity) -> ActivitySummary | None:
    return db.session.scalar(
        select(ActivitySummary).where(ActivitySummary.activity_id == activity.id)
    )


def _locked_summary(activity: Activity) -> ActivitySummary | None:
    """The summary, its row locked (PostgreSQL) so photo positions are counted once."""
    return db.session.scalar(
        select(ActivitySummary)
        .where(ActivitySummary.activity_id == activity.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


def photo_key(summary_id: int) -> str:
    """A new photo's storage key: ``summaries/<summary id>/<uuid>.jpg``."""
    return f"summaries/{summary_id}/{uuid.uuid4().hex}.jpg"


def thumbnail_key(storage_key: str) -> str:
    """The thumbnail kept beside a photo: ``…/<uuid>.thumb.jpg``."""
    return storage_key.removesuffix(".jpg") + ".thumb.jpg"


def photo_file_keys(photo: SummaryPhoto) -> list[str]:
    return [photo.storage_key, thumbnail_key(photo.storage_key)]


def check_photo_room(summary: ActivitySummary | None, adding: int) -> None:
    """Refuse adding ``adding`` photos beyond ``SUMMARY_PHOTOS_MAX`` for one summary."""
    have = len(summary.photos) if summary is not None else 0
    if have + adding > SUMMARY_PHOTOS_MAX:
        raise SummaryRefused(
            _(
                "每份活动总结最多 %(max)s 张照片：已有 %(have)s 张，本次最多还能添加 %(left)s 张。",
                max=SUMMARY_PHOTOS_MAX,
                have=have,
                left=max(SUMMARY_PHOTOS_MAX - have, 0),
            ),
            field="photos",
        )


def save_summary(
    activity: Activity,
    data: SummaryData,
    photos: list[ProcessedPhoto],
    user: User,
    storage: Storage,
    now: datetime,
) -> ActivitySummary:
    """Record (or correct) ``activity``'s summary and add ``photos`` to it, all or nothing."""
    begin_write()
    refusal = summary_refusal(activity, now)
    if refusal:
        raise SummaryRefused(refusal)
    if len(data.experts) > SUMMARY_EXPERTS_MAX:
        raise SummaryRefused(_("最多填写 %(n)s 位专家。", n=SUMMARY_EXPERTS_MAX), field="experts")
    summary = _locked_summary(activity)
    if summary is None:
        summary = ActivitySummary(activity_id=activity.id)
        db.session.add(summary)
    check_photo_room(summary, len(photos))
    summary.people_reached = data.people_reached
    summary.materials_distributed = data.materials_distributed
    summary.consultations = data.consultations
    summary.text = data.text
    summary.updated_by_id = user.id
    summary.updated_at = now
    summary.experts = [
        SummaryExpert(position=n, name=e.name, unit=e.unit, field=e.field)
        for n, e in enumerate(data.experts)
    ]
    db.session.flush()
    _add_photos(summary, photos, storage)
    return summary


def _add_photos(summary: ActivitySummary, photos: list[ProcessedPhoto], storage: Storage) -> None:
    written: list[str] = []
    try:
        start = len(summary.photos)
        for offset, photo in enumerate(photos):
            key = photo_key(summary.id)
            storage.put(key, photo.jpeg, "image/jpeg")
            written.append(key)
            storage.put(thumbnail_key(key), photo.thumbnail, "image/jpeg")
            written.append(thumbnail_key(key))
            summary.photos.append(
                SummaryPhoto(
                    position=start + offset,
                    storage_key=key,
                    width=photo.width,
                    height=photo.height,
                    size_bytes=len(photo.jpeg),
                )
            )
        db.session.flush()
    except BaseException:
        delete_quietly(storage, written)
        raise
    if written:
        after_rollback(lambda: delete_quietly(storage, written))


def delete_photo(photo: SummaryPhoto, storage: Storage) -> None:
    """Remove ``photo``; the later photos move up. Its files go once this commits."""
    begin_write()
    keys = photo_file_keys(photo)
    summary_id, position = photo.summary_id, photo.position
    db.session.delete(photo)
    db.session.flush()
    later = db.session.scalars(
        select(SummaryPhoto)
        .where(SummaryPhoto.summary_id == summary_id, SummaryPhoto.position > position)
        .order_by(SummaryPhoto.position)
    ).all()
    for other in later:  # one at a time, upwards: (summary, position) stays unique
        other.position -= 1
        db.session.flush()
    _forget_loaded_photos(summary_id)
    after_commit(lambda: delete_quietly(storage, keys))


def move_photo(photo: SummaryPhoto, step: int) -> SummaryPhoto:
    """Swap ``photo`` with its neighbour ``step`` (-1 earlier, +1 later) places away; at
    either end nothing changes. Returns the photo's row (written anew, see below)."""
    begin_write()
    neighbour = db.session.scalar(
        select(SummaryPhoto).where(
            SummaryPhoto.summary_id == photo.summary_id,
            SummaryPhoto.position == photo.position + step,
        )
    )
    if neighbour is None:
        return photo
    # Positions are unique per summary and all of 0..8 may be taken, so there is no spare
    # place to pass through: the moved row is deleted and inserted again at its new place.
    moved = SummaryPhoto(
        summary_id=photo.summary_id,
        position=neighbour.position,
        storage_key=photo.storage_key,
        width=photo.width,
        height=photo.height,
        size_bytes=photo.size_bytes,
        created_at=photo.created_at,
    )
    old_position = photo.position
    db.session.delete(photo)
    db.session.flush()
    neighbour.position = old_position
    db.session.flush()
    db.session.add(moved)
    db.session.flush()
    _forget_loaded_photos(photo.summary_id)
    return moved


def _forget_loaded_photos(summary_id: int) -> None:
    """The summary's photo list as loaded still holds a deleted row: read it again."""
    summary = db.session.get(ActivitySummary, summary_id)
    if summary is not None:
        db.session.expire(summary, ["photos"])
