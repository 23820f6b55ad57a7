"""Towns, villages and campaigns: the rules for adding, renaming, ordering, merging and
moving them, shared by the web pages (places/routes.py) and the ``flask town`` commands.

Services only flush; the caller commits (transactions.py). A refusal is a ``PlaceError``
naming the form field it concerns. Renames keep the old name among the former names
(as departments do), and the roster import still reads them (training.services).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import aliased, selectinload

from .. import signals
from ..extensions import db
from ..models import (
    TOWN_ORDER,
    Activity,
    ActivityKind,
    Cadre,
    CadrePeriod,
    Campaign,
    Registration,
    RegistrationStatus,
    Role,
    Town,
    TownAlias,
    User,
    Village,
)
from ..placenames import (
    FORMER_NAME_SEPARATOR,
    former_name_list,
    natural_key,
    normalize_place,
    with_former_name,
)
from ..years import YEAR_MAX, YEAR_MIN

NAME_MAX = 64  # towns.name, villages.name, town_aliases.alias
CODE_MAX = 32
CAMPAIGN_NAME_MAX = 100
FORMER_NAMES_MAX = 500  # typed by hand; renames add to it without a bound (a Text column)
POSITION_MAX = 9999
_CODE = re.compile(r"[A-Za-z0-9_-]+")


class PlaceError(ValueError):
    """A change refused, with the field of the form it concerns."""

    def __init__(self, message: str, field: str = "name"):
        super().__init__(message)
        self.field = field


# --- towns ----------------------------------------------------------------------------------


def towns_in_order() -> list[Town]:
    """Every town in ``TOWN_ORDER``, with its aliases and villages loaded (two more queries,
    however many towns: the towns page lists both)."""
    stmt = (
        select(Town)
        .order_by(*TOWN_ORDER)
        .options(selectinload(Town.aliases), selectinload(Town.villages))
    )
    return list(db.session.scalars(stmt))


def _clean_name(written: str, limit: int, field: str = "name") -> str:
    name = normalize_place(written)
    if not name:
        raise PlaceError(_("请填写名称。"), field)
    if len(name) > limit:
        raise PlaceError(_("名称不能超过 %(num)s 个字。", num=limit), field)
    return name


def _clean_code(written: str) -> str:
    code = (written or "").strip()
    if not code:
        raise PlaceError(_("请填写代码。"), "code")
    if len(code) > CODE_MAX:
        raise PlaceError(_("代码不能超过 %(num)s 个字符。", num=CODE_MAX), "code")
    if not _CODE.fullmatch(code):
        raise PlaceError(_("代码只能用英文字母、数字、“-”和“_”，例如 chengguan。"), "code")
    return code


def _clean_former_names(written: str | None) -> str | None:
    if written is None:
        return None
    names = [normalize_place(n) for n in former_name_list(written)]
    text = FORMER_NAME_SEPARATOR.join(dict.fromkeys(n for n in names if n))
    if len(text) > FORMER_NAMES_MAX:
        raise PlaceError(
            _("曾用名合计不能超过 %(num)s 个字。", num=FORMER_NAMES_MAX), "former_names"
        )
    return text


def _town_holding(keys: set[str], other_than: Town | None) -> dict[str, tuple[Town, str]]:
    """Those of ``keys`` that read as a town (not ``other_than``): its name, code or alias,
    each with the town and which of them; rosters find towns by all three, so one text may
    name one town only. The towns are read once for all the keys."""
    held: dict[str, tuple[Town, str]] = {}
    for town in db.session.scalars(select(Town)):
        if town is other_than:
            continue
        for key in keys:
            if key == normalize_place(town.name):
                held.setdefault(key, (town, _("名称")))
            elif key == normalize_place(town.code):
                held.setdefault(key, (town, _("代码")))
    for alias in db.session.scalars(select(TownAlias).where(TownAlias.alias.in_(keys))):
        if alias.town is not other_than:
            held.setdefault(alias.alias, (alias.town, _("别名")))
    return held


def _refuse_taken(town: Town | None, **texts: str) -> None:
    """Refuse, beside its field, the first of ``texts`` (form field: text as compared) that
    already reads as a town other than ``town``."""
    held = _town_holding(set(texts.values()), other_than=town)
    for field_name, key in texts.items():
        if key in held:
            other, what = held[key]
            raise PlaceError(
                _(
                    "“%(text)s”已是镇街“%(town)s”的%(what)s。",
                    text=key,
                    town=other.name,
                    what=what,
                ),
                field_name,
            )


def _next_position() -> int:
    highest = db.session.scalar(select(func.max(Town.position)))
    return min((highest or 0) + 1, POSITION_MAX)


def _clean_position(position: int | None) -> int:
    if position is None:
        return _next_position()
    if not 0 <= position <= POSITION_MAX:
        raise PlaceError(_("排序号须在 0 到 %(max)s 之间。", max=POSITION_MAX), "position")
    return position


def add_town(name: str, code: str, position: int | None = None) -> Town:
    """A new town; without a position it comes after every town.

    Refused when the name or code is empty, too long, or already reads as another town
    (its name, code or alias), or the code is not letters, digits, - and _.
    """
    name = _clean_name(name, NAME_MAX)
    code = _clean_code(code)
    _refuse_taken(None, name=name, code=normalize_place(code))
    town = Town(name=name, code=code, position=_clean_position(position), former_names="")
    db.session.add(town)
    db.session.flush()
    return town


def update_town(
    town: Town, name: str, code: str, position: int | None, former_names: str | None = None
) -> Town:
    """Rename, recode or reorder ``town``. The old name joins the former names, so rosters
    written before the rename still find the town; an alias that is now the name goes."""
    name = _clean_name(name, NAME_MAX)
    code = _clean_code(code)
    _refuse_taken(town, name=name, code=normalize_place(code))
    typed = _clean_former_names(former_names)
    history = town.former_names if typed is None else typed
    town.former_names = with_former_name(history, town.name, name)
    town.name, town.code = name, code
    town.position = _clean_position(town.position if position is None else position)
    for alias in list(town.aliases):
        if alias.alias in (name, normalize_place(code)):
            town.aliases.remove(alias)
    db.session.flush()
    return town


def add_town_alias(town: Town, written: str) -> TownAlias:
    """Let rosters write ``written`` for ``town`` (城关 for 城关镇).

    Refused when it is empty, too long, or already names a town or another alias.
    """
    alias = normalize_place(written)
    if not alias:
        raise PlaceError(_("请填写别名。"), "alias")
    if len(alias) > NAME_MAX:
        raise PlaceError(_("别名不能超过 64 个字。"), "alias")
    _refuse_taken(None, alias=alias)
    entry = TownAlias(town_id=town.id, alias=alias)
    db.session.add(entry)
    db.session.flush()
    return entry


def remove_town_alias(entry: TownAlias) -> None:
    """Rosters no longer write this alias for its town."""
    db.session.delete(entry)
    db.session.flush()


# --- villages -------------------------------------------------------------------------------


def villages_in_order(town: Town) -> list[Village]:
    """The town's villages in natural order: 二村 before 十村, 2组 before 10组."""
    return sorted(town.villages, key=lambda v: natural_key(v.name))


def _refuse_village_name(town: Town, name: str, village: Village | None) -> None:
    for other in town.villages:
        if other is not village and normalize_place(other.name) == name:
            raise PlaceError(
                _("%(town)s已有村/社区“%(name)s”。", town=town.name, name=other.name), "name"
            )


def add_village(town: Town, name: str) -> Village:
    """A new village of ``town``; refused when the town already has one of that name."""
    name = _clean_name(name, NAME_MAX)
    _refuse_village_name(town, name, None)
    village = Village(name=name, former_names="")
    town.villages.append(village)
    db.session.flush()
    return village


def rename_village(village: Village, name: str, former_names: str | None = None) -> Village:
    """Rename ``village``; the old name joins its former names (old rosters still match)."""
    name = _clean_name(name, NAME_MAX)
    _refuse_village_name(village.town, name, village)
    typed = _clean_former_names(former_names)
    history = village.former_names if typed is None else typed
    village.former_names = with_former_name(history, village.name, name)
    village.name = name
    db.session.flush()
    return village


_CANCELLED = RegistrationStatus.CANCELLED


def merge_refusals(source: Village, target: Village) -> list[str]:
    """Why ``source`` cannot be merged into ``target`` (empty when it can): the people who
    would then hold two registrations for one activity, by name and activity."""
    if source.id == target.id:
        return [_("请选择另一个村/社区。")]
    if source.town_id != target.town_id:
        return [_("只能合并同一镇街的村/社区；请先把“%(name)s”移到该镇街。", name=source.name)]
    found: dict[tuple[str, str], None] = {}
    # A walk-in without a phone is one per name and village per activity (a unique index).
    mine, theirs = aliased(Registration), aliased(Registration)
    walk_ins = (
        select(mine.name, Activity.title)
        .join(
            theirs,
            and_(
                theirs.activity_id == mine.activity_id,
                theirs.name == mine.name,
                theirs.village_id == target.id,
                theirs.phone.is_(None),
                theirs.status != _CANCELLED,
            ),
        )
        .join(Activity, Activity.id == mine.activity_id)
        .where(mine.village_id == source.id, mine.phone.is_(None), mine.status != _CANCELLED)
    )
    # Two roster cadres of one name, one in each village, both registered for one activity:
    # in one village they would read as one cadre registered twice.
    cadre_a, cadre_b = aliased(Cadre), aliased(Cadre)
    reg_a, reg_b = aliased(Registration), aliased(Registration)
    cadres = (
        select(cadre_a.name, Activity.title)
        .join(reg_a, and_(reg_a.cadre_id == cadre_a.id, reg_a.status != _CANCELLED))
        .join(reg_b, and_(reg_b.activity_id == reg_a.activity_id, reg_b.status != _CANCELLED))
        .join(cadre_b, and_(cadre_b.id == reg_b.cadre_id, cadre_b.name == cadre_a.name))
        .join(Activity, Activity.id == reg_a.activity_id)
        .where(cadre_a.village_id == source.id, cadre_b.village_id == target.id)
    )
    for stmt in (walk_ins, cadres):
        for name, title in db.session.execute(stmt):
            found[(name, title)] = None
    return [
        _("%(name)s 在两个村/社区中都报名了活动“%(activity)s”", name=name, activity=title)
        for name, title in found
    ]


def same_named_cadres(source: Village, target: Village) -> list[str]:
    """Names of roster cadres found in both villages: perhaps one person listed twice."""
    other = aliased(Cadre)
    stmt = (
        select(Cadre.name)
        .join(other, and_(other.name == Cadre.name, other.village_id == target.id))
        .where(Cadre.village_id == source.id)
        .distinct()
    )
    return sorted(db.session.scalars(stmt))


@dataclass
class MergeResult:
    cadres: int
    registrations: int
    activities: int


def merge_villages(source: Village, target: Village) -> MergeResult:
    """Everything of ``source`` (roster cadres and their periods, registrations,
    activities) now belongs to ``target``; ``source`` is deleted and its names become
    former names of ``target``. Refused (``PlaceError``) when ``merge_refusals`` says so."""
    refusals = merge_refusals(source, target)
    if refusals:
        raise PlaceError(_("不能合并：%(reasons)s。", reasons="；".join(refusals)), "target_id")
    moved = MergeResult(
        cadres=_repoint(Cadre, Cadre.village_id, source.id, target.id),
        registrations=_repoint(Registration, Registration.village_id, source.id, target.id),
        activities=_repoint(Activity, Activity.village_id, source.id, target.id),
    )
    _repoint(CadrePeriod, CadrePeriod.village_id, source.id, target.id)
    names = [*former_name_list(target.former_names), source.name]
    names += former_name_list(source.former_names)
    target.former_names = FORMER_NAME_SEPARATOR.join(
        dict.fromkeys(n for n in names if n != target.name)
    )
    db.session.delete(source)
    db.session.flush()
    db.session.expire_all()
    signals.door_access_changed.send(target)
    return moved


def _repoint(model, column, old_id: int, new_id: int) -> int:
    """Rows of ``model`` whose ``column`` is ``old_id`` get ``new_id``; how many."""
    db.session.flush()
    result: CursorResult = db.session.execute(  # type: ignore[assignment]  # UPDATE: a cursor
        update(model)
        .where(column == old_id)
        .values({column.key: new_id})
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


@dataclass
class MoveImpact:
    """What moving a village to another town changes, shown before it is done."""

    village: Village
    from_town: Town
    to_town: Town
    cadres_on_roster: int  # serving now
    cadres_ever: int  # with any roster period in the village (past years' coverage too)
    registrations: int
    activities: int
    coordinators: list[str] = field(default_factory=list)  # of the town it leaves
    refusal: str | None = None


def move_impact(village: Village, to_town: Town) -> MoveImpact:
    """How many cadres, registrations and activities go with ``village`` to ``to_town``
    (their coverage counts move from one town to the other), or why it cannot move."""
    refusal = None
    if to_town.id == village.town_id:
        refusal = _("“%(name)s”已属于%(town)s。", name=village.name, town=to_town.name)
    elif any(normalize_place(v.name) == normalize_place(village.name) for v in to_town.villages):
        refusal = _(
            "%(town)s已有同名的村/社区“%(name)s”：请先给其中一个改名，移动后再合并。",
            town=to_town.name,
            name=village.name,
        )

    def count(stmt) -> int:
        return db.session.scalar(stmt) or 0

    return MoveImpact(
        village=village,
        from_town=village.town,
        to_town=to_town,
        cadres_on_roster=count(
            select(func.count(Cadre.id)).where(
                Cadre.village_id == village.id, Cadre.left_on.is_(None)
            )
        ),
        cadres_ever=count(
            select(func.count(func.distinct(CadrePeriod.cadre_id))).where(
                CadrePeriod.village_id == village.id
            )
        ),
        registrations=count(
            select(func.count(Registration.id)).where(Registration.village_id == village.id)
        ),
        activities=count(select(func.count(Activity.id)).where(Activity.village_id == village.id)),
        coordinators=sorted(
            db.session.scalars(
                select(User.username).where(
                    User.role == Role.COORDINATOR, User.town_id == village.town_id
                )
            )
        ),
        refusal=refusal,
    )


def move_village(village: Village, to_town: Town) -> MoveImpact:
    """Move ``village`` to ``to_town`` with everything that names its town through it: its
    cadres (now and in their past roster periods: both towns' coverage changes, earlier
    years too), registrations and activities. Refused when ``move_impact`` says so."""
    impact = move_impact(village, to_town)
    if impact.refusal:
        raise PlaceError(impact.refusal, "town_id")
    village.town = to_town
    for model in (Cadre, CadrePeriod, Registration, Activity):
        db.session.flush()
        db.session.execute(
            update(model)
            .where(model.village_id == village.id)
            .values(town_id=to_town.id)
            .execution_options(synchronize_session=False)
        )
    db.session.flush()
    db.session.expire_all()
    signals.door_access_changed.send(village)
    return impact


# --- campaigns ------------------------------------------------------------------------------


def campaigns_in_order() -> list[Campaign]:
    return list(
        db.session.scalars(select(Campaign).order_by(Campaign.starts_on.desc(), Campaign.id))
    )


def save_campaign(
    campaign: Campaign | None,
    name: str,
    kind: str,
    starts_on: date,
    ends_on: date,
    former_names: str | None = None,
) -> Campaign:
    """Create (``campaign`` None) or change a campaign; a rename keeps the old name among
    the former names. Refused: an empty, too long or taken name, an unknown kind, dates
    outside YEAR_MIN–YEAR_MAX or ending before they start."""
    name = " ".join((name or "").split())
    if not name:
        raise PlaceError(_("请填写名称。"), "name")
    if len(name) > CAMPAIGN_NAME_MAX:
        raise PlaceError(_("名称不能超过 %(num)s 个字。", num=CAMPAIGN_NAME_MAX), "name")
    if kind not in set(ActivityKind):
        raise PlaceError(_("请选择类型。"), "kind")
    for day, field_name in ((starts_on, "starts_on"), (ends_on, "ends_on")):
        if not YEAR_MIN <= day.year <= YEAR_MAX:
            raise PlaceError(
                _("日期须在 %(min)s 年至 %(max)s 年之间。", min=YEAR_MIN, max=YEAR_MAX), field_name
            )
    if ends_on < starts_on:
        raise PlaceError(_("结束日期不能早于开始日期。"), "ends_on")
    taken = db.session.scalar(select(Campaign).where(Campaign.name == name))
    if taken is not None and taken is not campaign:
        raise PlaceError(_("已有名为“%(name)s”的专题。", name=name), "name")
    typed = _clean_former_names(former_names)
    if campaign is None:
        campaign = Campaign(name=name, former_names=typed or "")
        db.session.add(campaign)
    else:
        history = campaign.former_names if typed is None else typed
        campaign.former_names = with_former_name(history, campaign.name, name)
        campaign.name = name
    campaign.kind = ActivityKind(kind)
    campaign.starts_on, campaign.ends_on = starts_on, ends_on
    db.session.flush()
    return campaign
