"""Activity summaries in the back office: thin routes over summaries.services."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy.exc import IntegrityError
from werkzeug.wsgi import wrap_file

from ..extensions import db
from ..forms import ConfirmForm, add_error
from ..inputs import accepts_body_up_to
from ..models import SUMMARY_PHOTOS_MAX, Activity, SummaryPhoto, utcnow
from ..permissions import EDITOR_ROLES, managed_activity_or_403, roles_required
from ..security import as_image_document
from ..storage import NotStored, get_storage
from ..transactions import all_or_nothing, finish_reading
from .forms import SummaryForm
from .photos import MAX_PHOTO_BYTES, PhotoRefused, ProcessedPhoto, process_photo
from .services import (
    SummaryRefused,
    check_photo_room,
    delete_photo,
    move_photo,
    photo_file_keys,
    save_summary,
    summary_of,
    summary_refusal,
)

bp = Blueprint("summaries", __name__)
# All the photos a summary may hold, chosen at once on a phone, and the rest of the form.
UPLOAD_MAX_BYTES = SUMMARY_PHOTOS_MAX * MAX_PHOTO_BYTES + 2 * 1024 * 1024
PHOTO_CACHE_SECONDS = 365 * 24 * 3600  # a photo's URL names its file, which never changes


@bp.route("/activities/<int:activity_id>/summary")
@roles_required(*EDITOR_ROLES)
def show(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    return render_template(
        "summaries/show.html",
        activity=activity,
        summary=summary_of(activity),
        refusal=summary_refusal(activity, utcnow()),
        confirm_form=ConfirmForm(),
    )


@bp.route("/activities/<int:activity_id>/summary/edit", methods=["GET", "POST"])
@roles_required(*EDITOR_ROLES)
@accepts_body_up_to(UPLOAD_MAX_BYTES)
def edit(activity_id: int):
    activity = managed_activity_or_403(activity_id)
    refusal = summary_refusal(activity, utcnow())
    summary = summary_of(activity)
    form = SummaryForm(obj=summary if request.method == "GET" else None)
    if request.method == "GET" and summary is not None:
        form.fill_experts(summary.experts)
    if refusal is None and form.validate_on_submit():
        photos = _processed_photos(form, summary)
        if photos is not None and _saved(form, activity, photos):
            flash(_("活动总结已保存。"), "success")
            return redirect(url_for("summaries.show", activity_id=activity_id))
    form.pad_experts()
    return render_template(
        "summaries/edit.html",
        form=form,
        activity=activity,
        summary=summary,
        refusal=refusal,
        photos_max=SUMMARY_PHOTOS_MAX,
        photo_max_mb=MAX_PHOTO_BYTES // (1024 * 1024),
    )


def _processed_photos(form: SummaryForm, summary) -> list[ProcessedPhoto] | None:
    """The chosen photos, checked and converted; None (errors beside the field) if any is
    refused. Converting takes a while: no database transaction is held meanwhile."""
    files = form.chosen_files()
    try:
        check_photo_room(summary, len(files))
    except SummaryRefused as exc:
        add_error(form.photos, exc.message)
        return None
    finish_reading()
    photos, refused = [], []
    for upload in files:
        try:
            photos.append(process_photo(upload.read(MAX_PHOTO_BYTES + 1), upload.filename))
        except PhotoRefused as exc:
            refused.append(str(exc))
    for message in refused:
        add_error(form.photos, message)
    if refused:
        add_error(form.photos, _("未保存任何内容，请重新选择照片后再保存。"))
        return None
    return photos


def _saved(form: SummaryForm, activity: Activity, photos: list[ProcessedPhoto]) -> bool:
    try:
        with all_or_nothing():
            save_summary(
                activity,
                form.summary_data(),
                photos,
                current_user,
                get_storage(),
                utcnow(),
            )
    except SummaryRefused as exc:
        target = getattr(form, exc.field) if exc.field else None
        if target is not None:
            add_error(target, exc.message)
        else:
            form.form_errors.append(exc.message)
        return False
    except IntegrityError:
        form.form_errors.append(_("保存失败：可能有人同时在修改这份总结，请重试。"))
        return False
    return True


def _managed_photo_or_403(photo_id: int) -> SummaryPhoto:
    photo = db.get_or_404(SummaryPhoto, photo_id)
    managed_activity_or_403(photo.summary.activity_id)
    return photo


@bp.route("/summary-photos/<int:photo_id>/<name>")
@roles_required(*EDITOR_ROLES)
def photo_file(photo_id: int, name: str):
    """A photo (``<uuid>.jpg``) or its thumbnail (``<uuid>.thumb.jpg``), streamed from the
    storage after the permission check; never a public bucket URL."""
    photo = _managed_photo_or_403(photo_id)
    keys = {key.rsplit("/", 1)[1]: key for key in photo_file_keys(photo)}
    if name not in keys:
        abort(404)
    try:
        stream = get_storage().open(keys[name])
    except NotStored:
        abort(404)
    response = Response(
        wrap_file(request.environ, stream), mimetype="image/jpeg", direct_passthrough=True
    )
    response.headers["Cache-Control"] = f"private, max-age={PHOTO_CACHE_SECONDS}, immutable"
    return as_image_document(response)


@bp.route("/summary-photos/<int:photo_id>/delete", methods=["POST"])
@roles_required(*EDITOR_ROLES)
def remove_photo(photo_id: int):
    photo = _managed_photo_or_403(photo_id)
    activity_id = photo.summary.activity_id
    if not ConfirmForm().validate_on_submit():
        abort(400)
    delete_photo(photo, get_storage())
    flash(_("照片已删除。"), "success")
    return redirect(url_for("summaries.show", activity_id=activity_id))


@bp.route("/summary-photos/<int:photo_id>/move/<direction>", methods=["POST"])
@roles_required(*EDITOR_ROLES)
def reorder_photo(photo_id: int, direction: str):
    photo = _managed_photo_or_403(photo_id)
    activity_id = photo.summary.activity_id
    steps = {"earlier": -1, "later": 1}
    if direction not in steps or not ConfirmForm().validate_on_submit():
        abort(400)
    move_photo(photo, steps[direction])
    return redirect(url_for("summaries.show", activity_id=activity_id, _anchor="photos"))
