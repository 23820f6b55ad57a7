"""Towns, villages and campaigns for admins: thin routes over places.services."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from sqlalchemy.exc import IntegrityError
from wtforms import Form as _WTForm

from ..extensions import db
from ..forms import ConfirmForm, add_error
from ..models import Campaign, Town, TownAlias, Village
from ..permissions import PLACE_ROLES, roles_required
from ..transactions import all_or_nothing
from .forms import (
    AliasForm,
    CampaignEditForm,
    CampaignForm,
    MergeForm,
    MoveForm,
    TownEditForm,
    TownForm,
    VillageEditForm,
    VillageForm,
)
from .services import (
    PlaceError,
    add_town,
    add_town_alias,
    add_village,
    campaigns_in_order,
    merge_refusals,
    merge_villages,
    move_impact,
    move_village,
    remove_town_alias,
    rename_village,
    same_named_cadres,
    save_campaign,
    towns_in_order,
    update_town,
    villages_in_order,
)

bp = Blueprint("places", __name__, url_prefix="/manage/places")
T = TypeVar("T")


def _attempt(form: _WTForm, change: Callable[[], T]) -> T | None:
    """Run ``change`` in a savepoint; a refusal goes beside its field and gives None."""
    first = next(f for f in form if f.name != "csrf_token")
    try:
        with all_or_nothing():
            return change()
    except PlaceError as exc:
        add_error(getattr(form, exc.field, None) or first, str(exc))
    except IntegrityError:  # someone else saved the same name at the same moment
        add_error(first, _("刚被其他人使用，请刷新后重试。"))
    return None


# --- towns ----------------------------------------------------------------------------------


@bp.route("/towns", methods=["GET", "POST"])
@roles_required(*PLACE_ROLES)
def towns():
    form = TownForm()
    if form.validate_on_submit():
        town = _attempt(form, lambda: add_town(form.name.data, form.code.data, form.position.data))
        if town is not None:
            flash(_("已添加镇街“%(town)s”。", town=town.name), "success")
            return redirect(url_for("places.town", town_id=town.id))
    return render_template("places/towns.html", towns=towns_in_order(), form=form)


def _town_page(town: Town, **forms):
    if "edit_form" not in forms:
        forms["edit_form"] = TownEditForm(obj=town, formdata=None)
    forms.setdefault("alias_form", AliasForm(formdata=None))
    forms.setdefault("village_form", VillageForm(formdata=None))
    return render_template(
        "places/town.html",
        town=town,
        villages=villages_in_order(town),
        remove_form=ConfirmForm(),
        **forms,
    )


@bp.route("/towns/<int:town_id>", methods=["GET", "POST"])
@roles_required(*PLACE_ROLES)
def town(town_id: int):
    town = db.get_or_404(Town, town_id)
    form = TownEditForm(obj=town)
    if form.validate_on_submit():
        d = form.data
        if _attempt(
            form,
            lambda: update_town(town, d["name"], d["code"], d["position"], d["former_names"]),
        ):
            flash(_("已保存。"), "success")
            return redirect(url_for("places.town", town_id=town.id))
    return _town_page(town, edit_form=form)


@bp.route("/towns/<int:town_id>/aliases", methods=["POST"])
@roles_required(*PLACE_ROLES)
def add_alias(town_id: int):
    town = db.get_or_404(Town, town_id)
    form = AliasForm()
    if form.validate_on_submit():
        entry = _attempt(form, lambda: add_town_alias(town, form.alias.data or ""))
        if entry is not None:
            flash(
                _("已添加：花名册中的“%(alias)s”即“%(town)s”。", alias=entry.alias, town=town.name),
                "success",
            )
            return redirect(url_for("places.town", town_id=town.id))
    return _town_page(town, alias_form=form)


@bp.route("/aliases/<int:alias_id>/remove", methods=["POST"])
@roles_required(*PLACE_ROLES)
def remove_alias(alias_id: int):
    entry = db.get_or_404(TownAlias, alias_id)
    town_id = entry.town_id
    if ConfirmForm().validate_on_submit():
        name = entry.alias
        remove_town_alias(entry)
        flash(_("已删除别名“%(alias)s”。", alias=name), "success")
    return redirect(url_for("places.town", town_id=town_id))


@bp.route("/towns/<int:town_id>/villages", methods=["POST"])
@roles_required(*PLACE_ROLES)
def add_village_to_town(town_id: int):
    town = db.get_or_404(Town, town_id)
    form = VillageForm()
    if form.validate_on_submit():
        village = _attempt(form, lambda: add_village(town, form.name.data or ""))
        if village is not None:
            flash(_("已添加村/社区“%(name)s”。", name=village.name), "success")
            return redirect(url_for("places.town", town_id=town.id))
    return _town_page(town, village_form=form)


# --- villages -------------------------------------------------------------------------------


@bp.route("/villages/<int:village_id>", methods=["GET", "POST"])
@roles_required(*PLACE_ROLES)
def village(village_id: int):
    village = db.get_or_404(Village, village_id)
    form = VillageEditForm(obj=village)
    if form.validate_on_submit():
        d = form.data
        if _attempt(form, lambda: rename_village(village, d["name"], d["former_names"])):
            flash(_("已保存。"), "success")
            return redirect(url_for("places.town", town_id=village.town_id))
    return render_template("places/village.html", village=village, form=form)


@bp.route("/villages/<int:village_id>/merge", methods=["GET", "POST"])
@roles_required(*PLACE_ROLES)
def merge(village_id: int):
    source = db.get_or_404(Village, village_id)
    form = MergeForm()
    form.target_id.choices = [
        (v.id, v.name) for v in villages_in_order(source.town) if v.id != source.id
    ]
    preview = None
    if form.validate_on_submit():
        target = db.get_or_404(Village, form.target_id.data)
        if form.confirmed.data == "1":
            source_name = source.name
            done = _attempt(form, lambda: merge_villages(source, target))
            if done is not None:
                flash(
                    _(
                        "已把“%(source)s”并入“%(target)s”（干部 %(cadres)s 人，报名 %(regs)s 条，"
                        "活动 %(activities)s 个）。",
                        source=source_name,
                        target=target.name,
                        cadres=done.cadres,
                        regs=done.registrations,
                        activities=done.activities,
                    ),
                    "success",
                )
                return redirect(url_for("places.town", town_id=target.town_id))
        preview = {
            "target": target,
            "refusals": merge_refusals(source, target),
            "same_names": same_named_cadres(source, target),
        }
        form.confirmed.data = "1"
    return render_template("places/merge.html", village=source, form=form, preview=preview)


@bp.route("/villages/<int:village_id>/move", methods=["GET", "POST"])
@roles_required(*PLACE_ROLES)
def move(village_id: int):
    village = db.get_or_404(Village, village_id)
    form = MoveForm()
    form.town_id.choices = [(t.id, t.name) for t in towns_in_order() if t.id != village.town_id]
    impact = None
    if form.validate_on_submit():
        to_town = db.get_or_404(Town, form.town_id.data)
        if form.confirmed.data == "1":
            from_name = village.town.name
            if _attempt(form, lambda: move_village(village, to_town)):
                flash(
                    _(
                        "已把“%(village)s”从%(old)s移到%(new)s。",
                        village=village.name,
                        old=from_name,
                        new=to_town.name,
                    ),
                    "success",
                )
                return redirect(url_for("places.town", town_id=to_town.id))
        impact = move_impact(village, to_town)
        form.confirmed.data = "1"
    return render_template("places/move.html", village=village, form=form, impact=impact)


# --- campaigns ------------------------------------------------------------------------------


@bp.route("/campaigns", methods=["GET", "POST"])
@roles_required(*PLACE_ROLES)
def campaigns():
    form = CampaignForm()
    if form.validate_on_submit():
        d = form.data
        campaign = _attempt(
            form,
            lambda: save_campaign(None, d["name"], d["kind"], d["starts_on"], d["ends_on"]),
        )
        if campaign is not None:
            flash(_("已添加专题“%(name)s”。", name=campaign.name), "success")
            return redirect(url_for("places.campaigns"))
    return render_template("places/campaigns.html", campaigns=campaigns_in_order(), form=form)


@bp.route("/campaigns/<int:campaign_id>", methods=["GET", "POST"])
@roles_required(*PLACE_ROLES)
def campaign(campaign_id: int):
    campaign = db.get_or_404(Campaign, campaign_id)
    form = CampaignEditForm(obj=campaign)
    if form.validate_on_submit():
        d = form.data
        if _attempt(
            form,
            lambda: save_campaign(
                campaign, d["name"], d["kind"], d["starts_on"], d["ends_on"], d["former_names"]
            ),
        ):
            flash(_("已保存。"), "success")
            return redirect(url_for("places.campaigns"))
    return render_template("places/campaign.html", campaign=campaign, form=form)
