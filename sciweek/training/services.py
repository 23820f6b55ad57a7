"""Roster rules and state changes: checking a parsed roster against the database, importing
it, marking a cadre as left, linking attendees to cadres and setting targets.

Nothing here commits: the caller commits once, so every state change is one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    Activity,
    ActivityKind,
    Cadre,
    CoverageTarget,
    Registration,
    RegistrationStatus,
    Town,
    Village,
)
from .roster import Issue, ParsedRoster, RosterRow

POST_SEPARATOR = "、"


class RosterImportError(ValueError):
    """The roster cannot be imported as asked; the message is for people."""


class TrainingError(ValueError):
    """A refused change (leave, link, target); the message is for people."""


@dataclass
class PlannedCadre:
    """One person from the file after merging their rows, and what importing would do."""

    rows: list[int]
    name: str
    gender: str
    birth_month: str
    posts: list[str]
    town_id: int
    town_name: str
    village_name: str
    village_id: int | None
    phone: str | None
    id_number: str | None
    existing_id: int | None = None
    action: str = "new"  # new | update | unchanged | left


@dataclass
class TownCounts:
    rows: int = 0
    error_rows: int = 0
    people: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    new_villages: int = 0


@dataclass
class RosterCheck:
    """The preview report: every problem by row and column, and counts per town."""

    parsed: ParsedRoster
    issues: list[Issue]
    people: list[PlannedCadre]
    invalid_rows: set[int]
    town_counts: dict[str, TownCounts]
    new_villages: list[tuple[str, str]]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def notes(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "info"]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    @property
    def row_count(self) -> int:
        return len(self.parsed.rows)

    @property
    def valid_row_count(self) -> int:
        return len([r for r in self.parsed.rows if r.row not in self.invalid_rows])

    @property
    def importable(self) -> list[PlannedCadre]:
        return [p for p in self.people if not set(p.rows) & self.invalid_rows]


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_rows: int = 0
    villages_created: int = 0
    per_town: dict[str, TownCounts] = field(default_factory=dict)
    linked_registrations: int = 0  # earlier registrations now attached to their cadre
    refused_links: list[RefusedLink] = field(default_factory=list)


@dataclass
class RefusedLink:
    """An earlier registration left unlinked: its cadre already holds one for the activity."""

    registration_id: int
    name: str
    activity_title: str
    cadre_name: str

    @property
    def message(self) -> str:
        return _(
            "“%(activity)s”中 %(name)s 的报名未关联到干部 %(cadre)s：该干部已有此活动的报名，"
            "同一活动每人只计一条；这条报名留在“未匹配的参训人员”中。",
            activity=self.activity_title,
            name=self.name,
            cadre=self.cadre_name,
        )


@dataclass
class LinkResult:
    linked: int = 0
    refused: list[RefusedLink] = field(default_factory=list)


def _join_posts(posts: list[str]) -> str:
    return POST_SEPARATOR.join(p for p in posts if p)[:200]


def _split_posts(text: str) -> list[str]:
    return [p for p in (text or "").split(POST_SEPARATOR) if p]


class _Groups:
    """Union-find over file rows that share an ID number or a phone (one person)."""

    def __init__(self, rows: list[RosterRow]):
        self.parent = {r.row: r.row for r in rows}

    def find(self, key: int) -> int:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def check_roster(parsed: ParsedRoster, *, only_town_id: int | None = None) -> RosterCheck:
    """Check a parsed roster against towns, villages and the cadres already on the roster.

    ``only_town_id`` restricts the file to one town (a coordinator's import). Reads a
    constant number of queries whatever the file's size; writes nothing.
    """
    issues = list(parsed.issues)
    invalid = {r.row for r in parsed.rows if not r.valid}
    columns = parsed.columns

    def error(row: int, column: str, message: str) -> None:
        issues.append(Issue(row, columns.get(column, ""), message))
        invalid.add(row)

    towns = list(db.session.scalars(select(Town)))
    town_by_key = {t.name: t for t in towns} | {t.code: t for t in towns}
    villages = {(v.town_id, v.name): v.id for v in db.session.execute(select(Village)).scalars()}

    rows = [r for r in parsed.rows if r.valid]
    town_of: dict[int, Town] = {}
    for row in rows:
        town = town_by_key.get(row.town)
        if town is None:
            error(
                row.row,
                "town",
                _("未知的镇街“%(town)s”，请核对名称或请管理员先添加该镇街。", town=row.town),
            )
        elif only_town_id is not None and town.id != only_town_id:
            error(
                row.row, "town", _("您只能导入本镇街的干部，这一行属于“%(town)s”。", town=town.name)
            )
        else:
            town_of[row.row] = town

    # One person listed on several rows (一肩挑): same ID number or same phone.
    rows = [r for r in rows if r.row in town_of]
    groups = _Groups(rows)
    first_by_id: dict[str, int] = {}
    first_by_phone: dict[str, int] = {}
    for row in rows:
        if row.id_number:
            if row.id_number in first_by_id:
                groups.union(first_by_id[row.id_number], row.row)
            else:
                first_by_id[row.id_number] = row.row
        if row.phone:
            if row.phone in first_by_phone:
                groups.union(first_by_phone[row.phone], row.row)
            else:
                first_by_phone[row.phone] = row.row
    members: dict[int, list[RosterRow]] = defaultdict(list)
    for row in rows:
        members[groups.find(row.row)].append(row)

    people: list[PlannedCadre] = []
    for group in members.values():
        head = group[0]
        others = group[1:]
        if others:
            conflict = _group_conflict(group, town_of)
            if conflict:
                listed = "、".join(str(r.row) for r in group)
                for row in group:
                    error(
                        row.row,
                        conflict[0],
                        _("第 %(rows)s 行：%(why)s", rows=listed, why=conflict[1]),
                    )
                continue
            posts = list(dict.fromkeys(r.post for r in group if r.post))
            issues.append(
                Issue(
                    head.row,
                    "",
                    _(
                        "第 %(rows)s 行是同一人（%(name)s，身份证号或手机号相同），"
                        "合并为一名干部，职务：%(posts)s。",
                        rows="、".join(str(r.row) for r in group),
                        name=head.name,
                        posts=_join_posts(posts) or _("未填"),
                    ),
                    "info",
                )
            )
        else:
            posts = [head.post] if head.post else []
        town = town_of[head.row]
        people.append(
            PlannedCadre(
                rows=[r.row for r in group],
                name=head.name,
                gender=next((r.gender for r in group if r.gender), ""),
                birth_month=next((r.birth_month for r in group if r.birth_month), ""),
                posts=posts,
                town_id=town.id,
                town_name=town.name,
                village_name=head.village,
                village_id=villages.get((town.id, head.village)),
                phone=next((r.phone for r in group if r.phone), None),
                id_number=next((r.id_number for r in group if r.id_number), None),
            )
        )

    _match_existing(people, error, issues, only_town_id)

    new_villages: dict[tuple[int, str], tuple[str, str]] = {}
    for person in people:
        if person.village_id is None and not set(person.rows) & invalid:
            new_villages[(person.town_id, person.village_name)] = (
                person.town_name,
                person.village_name,
            )
    for town_name, village_name in new_villages.values():
        issues.append(
            Issue(
                None,
                columns.get("village", ""),
                _("将新建村/社区“%(village)s”（%(town)s）。", village=village_name, town=town_name),
                "info",
            )
        )

    counts: dict[str, TownCounts] = defaultdict(TownCounts)
    for row in parsed.rows:
        key = town_of[row.row].name if row.row in town_of else (row.town or _("（未填镇街）"))
        counts[key].rows += 1
        if row.row in invalid:
            counts[key].error_rows += 1
    for person in people:
        if set(person.rows) & invalid:
            continue
        c = counts[person.town_name]
        c.people += 1
        c.merged += len(person.rows) - 1
        if person.action == "new":
            c.new += 1
        elif person.action == "update":
            c.updated += 1
        else:
            c.unchanged += 1
    for town_name, _village in new_villages.values():
        counts[town_name].new_villages += 1

    issues.sort(key=lambda i: (i.row is None, i.row or 0))
    return RosterCheck(
        parsed=parsed,
        issues=issues,
        people=people,
        invalid_rows=invalid,
        town_counts=dict(sorted(counts.items())),
        new_villages=sorted(new_villages.values()),
    )


def _group_conflict(group: list[RosterRow], town_of: dict[int, Town]) -> tuple[str, str] | None:
    """Why rows sharing a phone or ID number cannot be one person, or None."""
    if len({r.name for r in group}) > 1:
        return "name", _(
            "手机号或身份证号相同，但姓名不同（%(names)s），请核对。",
            names="、".join(dict.fromkeys(r.name for r in group)),
        )
    if len({r.id_number for r in group if r.id_number}) > 1:
        return "id_number", _("同一手机号对应了不同的身份证号，请核对。")
    if len({r.phone for r in group if r.phone}) > 1:
        return "phone", _("同一身份证号对应了不同的手机号，请核对。")
    if len({(town_of[r.row].id, r.village) for r in group}) > 1:
        return "village", _("同一人填在了不同的村/社区，请核对。")
    return None


def _match_existing(
    people: list[PlannedCadre], error, issues: list[Issue], only_town_id: int | None
) -> None:
    """Find each person on the roster: by ID number, else phone, else name and village.

    A town's own import (``only_town_id``) may not rename or move another town's cadre.
    """
    existing = list(db.session.scalars(select(Cadre)))
    by_id = {c.id_number: c for c in existing if c.id_number}
    by_phone = {c.phone: c for c in existing if c.phone}
    by_name = defaultdict(list)
    for cadre in existing:
        by_name[(cadre.village_id, cadre.name)].append(cadre)
    claimed: dict[int, PlannedCadre] = {}
    for person in people:
        match = by_id.get(person.id_number) if person.id_number else None
        if match is None and person.phone:
            match = by_phone.get(person.phone)
            if match is not None and match.id_number and person.id_number:
                error(
                    person.rows[0],
                    "phone",
                    _(
                        "手机号已登记在另一名干部（%(name)s）名下，且身份证号不同，请核对。",
                        name=match.name,
                    ),
                )
                continue
        if match is None and person.village_id is not None:
            candidates = [
                c
                for c in by_name.get((person.village_id, person.name), [])
                if not (c.id_number and person.id_number and c.id_number != person.id_number)
                and not (c.phone and person.phone and by_phone.get(person.phone) not in (None, c))
            ]
            if len(candidates) == 1:
                match = candidates[0]
        if match is None:
            continue
        if person.phone and by_phone.get(person.phone) not in (None, match):
            error(
                person.rows[0],
                "phone",
                _(
                    "手机号已登记在另一名干部（%(name)s）名下，请核对。",
                    name=by_phone[person.phone].name,
                ),
            )
            continue
        if match.id in claimed:
            error(
                person.rows[0],
                "name",
                _(
                    "与第 %(row)s 行匹配到花名册上的同一名干部（%(name)s），请核对。",
                    row=claimed[match.id].rows[0],
                    name=match.name,
                ),
            )
            continue
        if only_town_id is not None and match.town_id != only_town_id:
            error(
                person.rows[0],
                "phone" if person.phone and match.phone == person.phone else "name",
                _(
                    "此人已在其他镇街（%(town)s）的花名册上（%(name)s），请与该镇街核对。",
                    town=match.town.name,
                    name=match.name,
                ),
            )
            continue
        claimed[match.id] = person
        person.existing_id = match.id
        if match.left_on is not None:
            person.action = "left"
            issues.append(
                Issue(
                    person.rows[0],
                    "",
                    _(
                        "%(name)s 已于 %(date)s 离任，本次导入不会恢复；"
                        "如已重新任职，请联系管理员。",
                        name=match.name,
                        date=match.left_on.isoformat(),
                    ),
                    level="warning",
                )
            )
            continue
        person.action = "update" if _differs(match, person) else "unchanged"


def _differs(cadre: Cadre, person: PlannedCadre) -> bool:
    return (
        cadre.name != person.name
        or cadre.town_id != person.town_id
        or person.village_id is None
        or cadre.village_id != person.village_id
        or (person.posts and cadre.posts != _join_posts(person.posts))
        or (person.gender and cadre.gender != person.gender)
        or (person.birth_month and cadre.birth_month != person.birth_month)
        or (person.phone and cadre.phone != person.phone)
        or (person.id_number and cadre.id_number != person.id_number)
    )


def import_roster(
    check: RosterCheck, *, active_from: date, only_valid: bool = False
) -> ImportResult:
    """Write the checked roster: new villages, new cadres, changed cadres.

    Refuses while errors remain unless ``only_valid``; then rows with errors are skipped.
    Importing the same file twice changes nothing the second time.
    """
    if check.has_errors and not only_valid:
        raise RosterImportError(
            _(
                "表格还有 %(n)s 处错误，未导入任何数据。请修正后重新上传，或选择只导入无误的行。",
                n=len(check.errors),
            )
        )
    people = check.importable
    if not people:
        raise RosterImportError(_("没有可以导入的行。"))
    result = ImportResult(skipped_rows=len(check.invalid_rows))
    village_ids: dict[tuple[int, str], int] = {}
    for person in people:
        if person.village_id is None:
            key = (person.town_id, person.village_name)
            if key not in village_ids:
                village = Village(town_id=person.town_id, name=person.village_name)
                db.session.add(village)
                db.session.flush()
                village_ids[key] = village.id
                result.villages_created += 1
            person.village_id = village_ids[key]
    existing = (
        {
            c.id: c
            for c in db.session.scalars(
                select(Cadre).where(Cadre.id.in_([p.existing_id for p in people if p.existing_id]))
            )
        }
        if any(p.existing_id for p in people)
        else {}
    )
    for person in people:
        counts = result.per_town.setdefault(person.town_name, TownCounts())
        counts.people += 1
        if person.existing_id is None:
            db.session.add(
                Cadre(
                    name=person.name,
                    gender=person.gender,
                    birth_month=person.birth_month,
                    posts=_join_posts(person.posts),
                    town_id=person.town_id,
                    village_id=person.village_id,
                    phone=person.phone,
                    id_number=person.id_number,
                    active_from=active_from,
                )
            )
            result.created += 1
            counts.new += 1
            continue
        cadre = existing[person.existing_id]
        if person.action in ("unchanged", "left") or not _differs(cadre, person):
            result.unchanged += 1
            counts.unchanged += 1
            continue
        cadre.name = person.name
        cadre.town_id = person.town_id
        cadre.village_id = person.village_id
        if person.posts:
            cadre.posts = _join_posts(person.posts)
        if person.gender:
            cadre.gender = person.gender
        if person.birth_month:
            cadre.birth_month = person.birth_month
        if person.phone:
            cadre.phone = person.phone
        if person.id_number:
            cadre.id_number = person.id_number
        result.updated += 1
        counts.updated += 1
    db.session.flush()
    links = link_registrations_by_phone([p.phone for p in people if p.phone])
    result.linked_registrations = links.linked
    result.refused_links = links.refused
    return result


def link_registrations_by_phone(phones: list[str]) -> LinkResult:
    """Attach registrations made before these cadres were on the roster to them.

    Each unlinked registration whose phone is a cadre's phone gets that cadre. Registrations
    already linked (by phone or by hand) keep their cadre. A cadre holds one active
    registration per activity (``uq_registrations_active_cadre``): when the cadre already
    holds another one there (e.g. linked by hand, or registered with their old phone), this
    one stays unlinked and is reported, so that a coordinator can decide on the unmatched
    attendees page; the import goes on.
    """
    result = LinkResult()
    if not phones:
        return result
    # Both subqueries are correlated with the registration row being updated.
    cadre_of_row = (
        select(Cadre.id)
        .where(Cadre.phone == Registration.phone)
        .correlate(Registration)
        .scalar_subquery()
    )
    held = aliased(Registration)
    holder = aliased(Cadre)
    cadre_holds_another = (
        select(held.id)
        .join(holder, holder.id == held.cadre_id)
        .where(
            holder.phone == Registration.phone,
            held.activity_id == Registration.activity_id,
            held.id != Registration.id,
            held.status != RegistrationStatus.CANCELLED.value,
        )
        .correlate(Registration)
        .exists()
    )
    active = Registration.status != RegistrationStatus.CANCELLED.value
    for start in range(0, len(phones), 500):
        chunk = phones[start : start + 500]
        unlinked = and_(Registration.cadre_id.is_(None), Registration.phone.in_(chunk))
        for row in db.session.execute(
            select(Registration.id, Registration.name, Activity.title, Cadre.name.label("cadre"))
            .join(Activity, Activity.id == Registration.activity_id)
            .join(Cadre, Cadre.phone == Registration.phone)
            .where(unlinked, active, cadre_holds_another)
            .order_by(Registration.id)
        ):
            result.refused.append(
                RefusedLink(
                    registration_id=row.id,
                    name=row.name,
                    activity_title=row.title,
                    cadre_name=row.cadre,
                )
            )
        result.linked += db.session.execute(
            update(Registration)
            .where(unlinked, or_(~active, ~cadre_holds_another))
            .values(cadre_id=cadre_of_row)
            .execution_options(synchronize_session=False)
        ).rowcount
    return result


def mark_cadre_left(cadre: Cadre, left_on: date) -> None:
    """A cadre leaves the roster from ``left_on``; the row and its history stay."""
    if left_on < cadre.active_from:
        raise TrainingError(
            _("离任日期不能早于进入花名册的日期（%(d)s）。", d=cadre.active_from.isoformat())
        )
    cadre.left_on = left_on


def link_registration_to_cadre(registration: Registration, cadre: Cadre | None) -> None:
    """Resolve an attendee by hand: this registration is (or, with None, is not) that cadre."""
    if registration.activity.kind != ActivityKind.TRAINING:
        raise TrainingError(_("只能关联培训活动的报名。"))
    if cadre is not None and registration.status != "cancelled":
        taken = db.session.scalar(
            select(Registration.id).where(
                Registration.activity_id == registration.activity_id,
                Registration.cadre_id == cadre.id,
                Registration.status != "cancelled",
                Registration.id != registration.id,
            )
        )
        if taken is not None:
            raise TrainingError(_("该干部已有此活动的报名，不能重复关联。"))
    registration.cadre_id = cadre.id if cadre is not None else None


def clear_target(town_id: int, year: int) -> None:
    """The town has no target for the year (its bar shows "no target")."""
    db.session.execute(
        delete(CoverageTarget).where(CoverageTarget.town_id == town_id, CoverageTarget.year == year)
    )


def set_target(town_id: int, year: int, percent: Decimal, threshold_hours: Decimal | None) -> None:
    """Create or change a town's target for a year."""
    target = db.session.scalar(
        select(CoverageTarget).where(CoverageTarget.town_id == town_id, CoverageTarget.year == year)
    )
    if target is None:
        target = CoverageTarget(town_id=town_id, year=year)
        db.session.add(target)
    target.target_percent = percent
    target.threshold_hours = threshold_hours
