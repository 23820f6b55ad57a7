"""Roster rules and state changes: checking a parsed roster against the database, importing
it, marking a cadre as left, linking attendees to cadres and setting targets.

Nothing here commits: the caller commits once, so every state change is one transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.orm import aliased

from ..extensions import db
from ..models import (
    TOWN_ORDER,
    Activity,
    ActivityKind,
    Cadre,
    CoverageTarget,
    DistrictTarget,
    Registration,
    Town,
    TownAlias,
    Village,
)
from ..placenames import (
    former_name_list,
    natural_key,
    normalize_place,
    suggest_town,
    village_core,
    without_office,
)
from .periods import add_to_roster, end_service, last_start, move_cadre
from .roster import Issue, ParsedRoster, RosterRow, RowKey, row_ranges

POST_SEPARATOR = "、"


class RosterImportError(ValueError):
    """The roster cannot be imported as asked; the message is for people."""


class TrainingError(ValueError):
    """A refused change (leave, link, target); the message is for people."""


@dataclass
class PlannedCadre:
    """One person from the file after merging their rows, and what importing would do."""

    rows: list[RowKey]
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
class NewVillage:
    """A village the file names that is not on the town's list: created only when confirmed."""

    town: str
    village: str
    town_id: int
    rows: list[RowKey] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.town, self.village)


@dataclass
class RosterCheck:
    """The preview report: every problem by sheet, row and column, and counts per town."""

    parsed: ParsedRoster
    issues: list[Issue]
    people: list[PlannedCadre]
    invalid_rows: set[RowKey]
    skipped_rows: set[RowKey]
    town_counts: dict[str, TownCounts]
    new_villages: list[NewVillage]

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        """Doubts and notes: what a person should look at before importing."""
        return [i for i in self.issues if i.level in ("warning", "info")]

    @property
    def notes(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "info"]

    @property
    def skipped(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "skipped"]

    @property
    def has_errors(self) -> bool:
        return bool(self.errors)

    @property
    def row_count(self) -> int:
        """Rows considered for import (rows skipped as another town's are not)."""
        return len([r for r in self.parsed.rows if r.key not in self.skipped_rows])

    @property
    def valid_row_count(self) -> int:
        return len(
            [
                r
                for r in self.parsed.rows
                if r.key not in self.invalid_rows and r.key not in self.skipped_rows
            ]
        )

    @property
    def importable(self) -> list[PlannedCadre]:
        return [p for p in self.people if not set(p.rows) & self.invalid_rows]

    @property
    def new_village_keys(self) -> list[tuple[str, str]]:
        return [v.key for v in self.new_villages]


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


def rows_text(keys: list[RowKey]) -> str:
    """第 2、3 行 / 城关镇 第 2 行、河西街道 第 3 行: rows named for people."""
    sheets = list(dict.fromkeys(sheet for sheet, _row in keys))
    if len(sheets) <= 1:
        return _("第 %(rows)s 行", rows=row_ranges([row for _sheet, row in keys]))
    return "、".join(
        _(
            "%(sheet)s 第 %(rows)s 行",
            sheet=sheet,
            rows=row_ranges([row for s, row in keys if s == sheet]),
        )
        for sheet in sheets
    )


REPORT_KEYS = (
    "sheets",
    "rows_read",
    "valid_people",
    "by_town",
    "errors",
    "warnings",
    "skipped",
    "new_villages",
)


def _issue_json(issue: Issue) -> dict:
    return {
        "sheet": issue.sheet,
        "row": issue.row,
        "column": issue.column,
        "message": issue.message,
    }


def roster_report(check: RosterCheck) -> dict:
    """The check as data: the JSON report of ``import-cadres --format json`` and what the
    web preview shows. Keys: ``REPORT_KEYS``."""
    by_town: dict[str, int] = defaultdict(int)
    for person in check.importable:
        by_town[person.town_name] += 1
    return {
        "sheets": check.parsed.sheet_names,
        "rows_read": check.parsed.rows_read,
        "valid_people": len(check.importable),
        "by_town": dict(sorted(by_town.items())),
        "errors": [_issue_json(i) for i in check.errors],
        "warnings": [_issue_json(i) for i in check.warnings],
        "skipped": [_issue_json(i) for i in check.skipped],
        "new_villages": [
            {"town": v.town, "village": v.village, "rows": [row for _sheet, row in v.rows]}
            for v in check.new_villages
        ],
    }


def unreadable_report(message: str) -> dict:
    """The JSON report of a file that cannot be read as a roster at all."""
    report: dict = {key: [] for key in REPORT_KEYS}
    report.update(rows_read=0, valid_people=0, by_town={})
    report["errors"] = [{"sheet": "", "row": None, "column": "", "message": message}]
    return report


class _Groups:
    """Union-find over file rows that share an ID number or a phone (one person)."""

    def __init__(self, rows: list[RosterRow]):
        self.parent = {r.key: r.key for r in rows}

    def find(self, key: RowKey) -> RowKey:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, a: RowKey, b: RowKey) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra

    def join_sharing(self, rows: list[RosterRow], attribute: str) -> None:
        """Put rows with the same non-empty value of ``attribute`` in one group."""
        first: dict[str, RowKey] = {}
        for row in rows:
            value = getattr(row, attribute)
            if not value:
                continue
            if value in first:
                self.union(first[value], row.key)
            else:
                first[value] = row.key


@dataclass
class _Findings:
    """What checking a roster found: its issues, the rows that errors make invalid and the
    rows passed over (another town's, in a town's own import)."""

    parsed: ParsedRoster
    issues: list[Issue]
    invalid: set[RowKey]
    skipped: set[RowKey] = field(default_factory=set)

    def label(self, key: RowKey, column: str) -> str:
        return self.parsed.columns_of(key[0]).get(column, "")

    def add(self, key: RowKey, column: str, message: str, level: str) -> None:
        self.issues.append(Issue(key[1], self.label(key, column), message, level, key[0]))

    def error(self, key: RowKey, column: str, message: str) -> None:
        """An error in one cell: the row will not be imported."""
        self.add(key, column, message, "error")
        self.invalid.add(key)


def check_roster(parsed: ParsedRoster, *, only_town_id: int | None = None) -> RosterCheck:
    """Check a parsed roster against towns, villages and the cadres already on the roster.

    ``only_town_id`` restricts the file to one town (a coordinator's import): other towns'
    rows are passed over with one note per sheet. Reads a constant number of queries
    whatever the file's size; writes nothing.

    The steps: find each row's town; merge rows that are one person (一肩挑); match each
    person to the roster; list the villages to create; count per town.
    """
    findings = _Findings(
        parsed=parsed,
        issues=list(parsed.issues),
        invalid={r.key for r in parsed.rows if not r.valid},
    )
    town_of = _towns_of_rows([r for r in parsed.rows if r.valid], findings, only_town_id)
    rows = [r for r in parsed.rows if r.key in town_of]
    people = _plan_people(_one_person_groups(rows), town_of, findings)
    _match_existing(people, findings, only_town_id)
    new_villages = _villages_to_create(people, findings)
    counts = _counts_by_town(parsed, town_of, people, findings, new_villages)
    order = {name: index for index, name in enumerate(s.name for s in parsed.sheets)}
    issues = sorted(
        findings.issues,
        key=lambda i: (order.get(i.sheet, -1), i.row is None, i.row or 0),
    )
    return RosterCheck(
        parsed=parsed,
        issues=issues,
        people=people,
        invalid_rows=findings.invalid,
        skipped_rows=findings.skipped,
        town_counts=dict(sorted(counts.items())),
        new_villages=new_villages,
    )


def villages_by_written_name() -> dict[tuple[int, str], Village]:
    """The district's villages by (town id, name as compared): their names, then the names
    they had before a rename or a merge (an old roster still writes them)."""
    villages = list(db.session.execute(select(Village)).scalars())
    found = {(v.town_id, normalize_place(v.name)): v for v in villages}
    for village in villages:
        for former in former_name_list(village.former_names):
            found.setdefault((village.town_id, normalize_place(former)), village)
    return found


class TownDirectory:
    """The district's towns found by what a roster writes: the name, the code, an alias set
    by an admin (城关 for 城关镇), a name the town had before a rename, or the town's office
    (城关镇人民政府, 柳林街道办事处)."""

    def __init__(self) -> None:
        self.towns = list(db.session.scalars(select(Town).order_by(*TOWN_ORDER)))
        by_id = {t.id: t for t in self.towns}
        self.by_key: dict[str, Town] = {}
        for town in self.towns:
            self.by_key.setdefault(normalize_place(town.name), town)
            self.by_key.setdefault(normalize_place(town.code), town)
        for alias, town_id in db.session.execute(select(TownAlias.alias, TownAlias.town_id)):
            self.by_key.setdefault(normalize_place(alias), by_id[town_id])
        for town in self.towns:
            for former in former_name_list(town.former_names):
                self.by_key.setdefault(normalize_place(former), town)

    def find(self, written: str) -> Town | None:
        return self.by_key.get(normalize_place(written)) or self.by_key.get(without_office(written))

    def unknown_message(self, written: str) -> str:
        """Why ``written`` is no town, with the town it most likely means."""
        meant = suggest_town(written, [t.name for t in self.towns])
        if meant is None:
            return _("未知的镇街“%(town)s”，请核对名称或请管理员先添加该镇街。", town=written)
        return _(
            "未知的镇街“%(town)s”。是否为“%(meant)s”？如是，请改正；或请管理员把“%(town)s”"
            "添加为“%(meant)s”的别名（镇街别名）。",
            town=written,
            meant=meant,
        )


def _towns_of_rows(
    rows: list[RosterRow], findings: _Findings, only_town_id: int | None
) -> dict[RowKey, Town]:
    """Each row's town, keyed by row; an unknown town is an error (with the town it most
    likely means); in a town's own import, other towns' rows are passed over."""
    towns = TownDirectory()
    town_of: dict[RowKey, Town] = {}
    foreign: dict[str, list[RosterRow]] = defaultdict(list)  # sheet -> rows
    for row in rows:
        town = towns.find(row.town)
        if town is None:
            findings.error(row.key, "town", towns.unknown_message(row.town))
        elif only_town_id is not None and town.id != only_town_id:
            foreign[row.sheet].append(row)
            findings.skipped.add(row.key)
        else:
            town_of[row.key] = town
    for sheet, passed in foreign.items():
        _note_foreign_rows(findings, sheet, passed, towns)
    if only_town_id is not None and foreign and not town_of:
        own = next((t.name for t in towns.towns if t.id == only_town_id), "")
        findings.issues.append(
            Issue(None, "", _("文件中没有本镇街（%(town)s）的行，没有可以导入的干部。", town=own))
        )
    return town_of


def _note_foreign_rows(
    findings: _Findings, sheet: str, rows: list[RosterRow], towns: TownDirectory
) -> None:
    per_town: dict[str, int] = defaultdict(int)
    for row in rows:
        found = towns.find(row.town)
        per_town[found.name if found else row.town] += 1
    findings.issues.append(
        Issue(
            None,
            findings.label((sheet, 0), "town"),
            ngettext(
                "非本镇，已跳过 %(num)s 行（%(towns)s）。",
                "非本镇，已跳过 %(num)s 行（%(towns)s）。",
                len(rows),
                towns="、".join(
                    ngettext("%(town)s %(num)s 行", "%(town)s %(num)s 行", count, town=name)
                    for name, count in per_town.items()
                ),
            ),
            "skipped",
            sheet,
        )
    )


def _one_person_groups(rows: list[RosterRow]) -> list[list[RosterRow]]:
    """Rows grouped by person: one person listed on several rows (一肩挑) shares an ID
    number or a phone. Groups come in the order of their first row."""
    groups = _Groups(rows)
    groups.join_sharing(rows, "id_number")
    groups.join_sharing(rows, "phone")
    members: dict[RowKey, list[RosterRow]] = defaultdict(list)
    for row in rows:
        members[groups.find(row.key)].append(row)
    return list(members.values())


def _plan_people(
    groups: list[list[RosterRow]], town_of: dict[RowKey, Town], findings: _Findings
) -> list[PlannedCadre]:
    """One planned cadre per group of rows; groups whose rows disagree are errors."""
    villages = villages_by_written_name()
    people: list[PlannedCadre] = []
    for group in groups:
        posts = _merged_posts(group, town_of, findings)
        if posts is None:
            continue
        head = group[0]
        town = town_of[head.key]
        village = villages.get((town.id, normalize_place(head.village)))
        people.append(
            PlannedCadre(
                rows=[r.key for r in group],
                name=head.name,
                gender=next((r.gender for r in group if r.gender), ""),
                birth_month=next((r.birth_month for r in group if r.birth_month), ""),
                posts=posts,
                town_id=town.id,
                town_name=town.name,
                village_name=village.name if village else head.village,
                village_id=village.id if village else None,
                phone=next((r.phone for r in group if r.phone), None),
                id_number=next((r.id_number for r in group if r.id_number), None),
            )
        )
    return people


def _merged_posts(
    group: list[RosterRow], town_of: dict[RowKey, Town], findings: _Findings
) -> list[str] | None:
    """The posts of one person's rows, noting a merge of several rows; None (and an error
    on every row) when the rows cannot be one person."""
    head = group[0]
    if len(group) == 1:
        return [head.post] if head.post else []
    listed = rows_text([r.key for r in group])
    conflict = _group_conflict(group, town_of)
    if conflict:
        column, why = conflict
        for row in group:
            findings.error(row.key, column, _("%(rows)s：%(why)s", rows=listed, why=why))
        return None
    posts = list(dict.fromkeys(r.post for r in group if r.post))
    findings.add(
        head.key,
        "",
        _(
            "%(rows)s是同一人（%(name)s，身份证号或手机号相同），合并为一名干部，职务：%(posts)s。",
            rows=listed,
            name=head.name,
            posts=_join_posts(posts) or _("未填"),
        ),
        "info",
    )
    return posts


def _group_conflict(group: list[RosterRow], town_of: dict[RowKey, Town]) -> tuple[str, str] | None:
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
    if len({(town_of[r.key].id, normalize_place(r.village)) for r in group}) > 1:
        return "village", _("同一人填在了不同的村/社区，请核对。")
    return None


class _VillageIndex:
    """The district's villages, to say which known village a new name most likely means."""

    def __init__(self) -> None:
        rows = db.session.execute(select(Village.town_id, Village.name, Town.name).join(Town))
        self.by_core: dict[str, list[tuple[int, str, str]]] = defaultdict(list)
        for town_id, name, town_name in rows:
            self.by_core[village_core(name)].append((town_id, name, town_name))

    def hint(self, village: NewVillage) -> str | None:
        """A near-miss in the same town (城关1村 for 城关一村), or the village of another
        town; None when the name is new everywhere."""
        similar = self.by_core.get(village_core(village.village), [])
        rows = rows_text(village.rows)
        same_town = [name for town_id, name, _t in similar if town_id == village.town_id]
        if same_town:
            return _(
                "%(rows)s：村/社区“%(village)s”不在%(town)s的名单上，是否为“%(meant)s”？"
                "如是，请改正后重新上传；不确认新建，这些行就不会导入。",
                rows=rows,
                village=village.village,
                town=village.town,
                meant=same_town[0],
            )
        elsewhere = [(name, town) for _id, name, town in similar]
        if elsewhere:
            name, town = elsewhere[0]
            return _(
                "%(rows)s：“%(name)s”是%(other)s的村/社区，不在%(town)s的名单上，是否填错了镇街？",
                rows=rows,
                name=name,
                other=town,
                town=village.town,
            )
        return None


def _villages_to_create(people: list[PlannedCadre], findings: _Findings) -> list[NewVillage]:
    """Each village that importing would create, with its rows, in natural order; a name
    close to a known village gets a warning with the village it most likely means."""
    new: dict[tuple[int, str], NewVillage] = {}
    for person in people:
        if person.village_id is None and not set(person.rows) & findings.invalid:
            village = new.setdefault(
                (person.town_id, person.village_name),
                NewVillage(
                    town=person.town_name, village=person.village_name, town_id=person.town_id
                ),
            )
            village.rows.extend(person.rows)
    if new:
        index = _VillageIndex()
        for village in new.values():
            hint = index.hint(village)
            if hint is not None:
                findings.add(village.rows[0], "village", hint, "warning")
    return sorted(new.values(), key=lambda v: (v.town, natural_key(v.village)))


def _counts_by_town(
    parsed: ParsedRoster,
    town_of: dict[RowKey, Town],
    people: list[PlannedCadre],
    findings: _Findings,
    new_villages: list[NewVillage],
) -> dict[str, TownCounts]:
    """Rows, error rows, people and what importing would do to them, per town."""
    counts: dict[str, TownCounts] = defaultdict(TownCounts)
    for row in parsed.rows:
        if row.key in findings.skipped:
            continue
        key = town_of[row.key].name if row.key in town_of else (row.town or _("（未填镇街）"))
        counts[key].rows += 1
        if row.key in findings.invalid:
            counts[key].error_rows += 1
    for person in people:
        if set(person.rows) & findings.invalid:
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
    for village in new_villages:
        counts[village.town].new_villages += 1
    return counts


class _Roster:
    """The cadres already on the roster, looked up by ID number, phone, and village and name."""

    def __init__(self) -> None:
        existing = list(db.session.scalars(select(Cadre)))
        self.by_id = {c.id_number: c for c in existing if c.id_number}
        self.by_phone = {c.phone: c for c in existing if c.phone}
        self.by_name: dict[tuple[int, str], list[Cadre]] = defaultdict(list)
        for cadre in existing:
            self.by_name[(cadre.village_id, cadre.name)].append(cadre)

    def find(self, person: PlannedCadre, findings: _Findings) -> Cadre | None:
        """The cadre this person is: by ID number, else phone, else the only cadre of that
        name in that village. A phone held by a cadre with another ID number is an error."""
        match = self.by_id.get(person.id_number) if person.id_number else None
        if match is None and person.phone:
            match = self.by_phone.get(person.phone)
            if match is not None and match.id_number and person.id_number:
                findings.error(
                    person.rows[0],
                    "phone",
                    _(
                        "手机号已登记在另一名干部（%(name)s）名下，且身份证号不同，请核对。",
                        name=match.name,
                    ),
                )
                return None
        if match is None and person.village_id is not None:
            match = self._only_namesake(person)
        return match

    def _only_namesake(self, person: PlannedCadre) -> Cadre | None:
        """The one cadre of the person's name in their village whose ID number and phone
        do not contradict the person's; None when there is none or more than one."""
        candidates = [
            c
            for c in self.by_name.get((person.village_id, person.name), [])
            if not (c.id_number and person.id_number and c.id_number != person.id_number)
            and not (c.phone and person.phone and self.by_phone.get(person.phone) not in (None, c))
        ]
        return candidates[0] if len(candidates) == 1 else None

    def phone_holder_other_than(self, person: PlannedCadre, match: Cadre) -> Cadre | None:
        """Another cadre on the roster who holds the person's phone, if any."""
        if person.phone and self.by_phone.get(person.phone) not in (None, match):
            return self.by_phone[person.phone]
        return None


def _match_existing(
    people: list[PlannedCadre], findings: _Findings, only_town_id: int | None
) -> None:
    """Find each person on the roster: by ID number, else phone, else name and village.

    Sets ``existing_id`` and ``action`` of each matched person, or reports why the match
    cannot be used. A town's own import (``only_town_id``) may not rename or move another
    town's cadre.
    """
    roster = _Roster()
    claimed: dict[int, PlannedCadre] = {}
    for person in people:
        match = roster.find(person, findings)
        if match is None:
            continue
        refusal = _refused_match(person, match, roster, claimed, only_town_id)
        if refusal is not None:
            findings.error(person.rows[0], *refusal)
            continue
        claimed[match.id] = person
        person.existing_id = match.id
        _plan_action(person, match, findings)


def _refused_match(
    person: PlannedCadre,
    match: Cadre,
    roster: _Roster,
    claimed: dict[int, PlannedCadre],
    only_town_id: int | None,
) -> tuple[str, str] | None:
    """(column, message) when the person may not be matched to this cadre, else None."""
    holder = roster.phone_holder_other_than(person, match)
    if holder is not None:
        return "phone", _("手机号已登记在另一名干部（%(name)s）名下，请核对。", name=holder.name)
    if match.id in claimed:
        return "name", _(
            "与%(rows)s匹配到花名册上的同一名干部（%(name)s），请核对。",
            rows=rows_text(claimed[match.id].rows[:1]),
            name=match.name,
        )
    if only_town_id is not None and match.town_id != only_town_id:
        return "phone" if person.phone and match.phone == person.phone else "name", _(
            "此人已在其他镇街（%(town)s）的花名册上（%(name)s），请与该镇街核对。",
            town=match.town.name,
            name=match.name,
        )
    return None


def _plan_action(person: PlannedCadre, match: Cadre, findings: _Findings) -> None:
    """What importing does to a matched cadre: nothing if they left, else update or not."""
    if match.left_on is None:
        person.action = "update" if _differs(match, person) else "unchanged"
        return
    person.action = "left"
    findings.add(
        person.rows[0],
        "",
        _(
            "%(name)s 已于 %(date)s 离任，本次导入不会恢复；如已重新任职，请联系管理员。",
            name=match.name,
            date=match.left_on.isoformat(),
        ),
        "warning",
    )


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
    check: RosterCheck,
    *,
    active_from: date,
    only_valid: bool = False,
    new_villages: Iterable[tuple[str, str]] = (),
) -> ImportResult:
    """Write the checked roster: the confirmed new villages, new cadres, changed cadres.

    ``new_villages`` are the (town, village) pairs of ``check.new_villages`` that a person
    confirmed. Refuses while errors remain or a new village is unconfirmed, unless
    ``only_valid``; then rows with errors and rows in unconfirmed villages are skipped.
    Importing the same file twice changes nothing the second time. Earlier registrations
    with an imported cadre's phone are then linked to that cadre.
    """
    confirmed = set(new_villages) & set(check.new_village_keys)
    people, skipped = _importable_people(check, only_valid, confirmed)
    result = ImportResult(skipped_rows=len(check.invalid_rows) + skipped)
    result.villages_created = _create_villages(people)
    existing = _cadres_by_id([p.existing_id for p in people if p.existing_id])
    for person in people:
        counts = result.per_town.setdefault(person.town_name, TownCounts())
        counts.people += 1
        if person.existing_id is None:
            _add_cadre(person, active_from)
            result.created += 1
            counts.new += 1
        elif _update_cadre(existing[person.existing_id], person, active_from):
            result.updated += 1
            counts.updated += 1
        else:
            result.unchanged += 1
            counts.unchanged += 1
    db.session.flush()
    links = link_registrations_by_phone([p.phone for p in people if p.phone])
    result.linked_registrations = links.linked
    result.refused_links = links.refused
    return result


def _importable_people(
    check: RosterCheck, only_valid: bool, confirmed: set[tuple[str, str]]
) -> tuple[list[PlannedCadre], int]:
    """The people to write and how many more rows are skipped (in unconfirmed villages),
    or RosterImportError when errors remain or nothing is left."""
    if check.has_errors and not only_valid:
        raise RosterImportError(
            ngettext(
                "表格还有 %(num)s 处错误，未导入任何数据。请修正后重新上传，或选择只导入无误的行。",
                "表格还有 %(num)s 处错误，未导入任何数据。请修正后重新上传，或选择只导入无误的行。",
                len(check.errors),
            )
        )
    unconfirmed = [v for v in check.new_villages if v.key not in confirmed]
    if unconfirmed and not only_valid:
        raise RosterImportError(
            ngettext(
                "有 %(num)s 个新村/社区没有确认新建（%(names)s），未导入任何数据。"
                "请在预览中勾选确认新建，或改正表格后重新上传；也可以选择只导入无误的行，"
                "跳过这些村/社区的行。",
                "有 %(num)s 个新村/社区没有确认新建（%(names)s），未导入任何数据。"
                "请在预览中勾选确认新建，或改正表格后重新上传；也可以选择只导入无误的行，"
                "跳过这些村/社区的行。",
                len(unconfirmed),
                names="、".join(f"{v.town}{v.village}" for v in unconfirmed[:10])
                + ("…" if len(unconfirmed) > 10 else ""),
            )
        )
    waiting = {(v.town_id, v.village) for v in unconfirmed}
    people = [p for p in check.importable if (p.town_id, p.village_name) not in waiting]
    skipped = sum(len(v.rows) for v in unconfirmed)
    if not people:
        raise RosterImportError(_("没有可以导入的行。"))
    return people, skipped


def _create_villages(people: list[PlannedCadre]) -> int:
    """Create each village the people live in that is not there yet, once; return how many.

    Sets ``village_id`` of those people. Only confirmed villages reach here.
    """
    village_ids: dict[tuple[int, str], int] = {}
    for person in people:
        if person.village_id is None:
            key = (person.town_id, person.village_name)
            if key not in village_ids:
                village = Village(town_id=person.town_id, name=person.village_name)
                db.session.add(village)
                db.session.flush()
                village_ids[key] = village.id
            person.village_id = village_ids[key]
    return len(village_ids)


def _cadres_by_id(ids: list[int]) -> dict[int, Cadre]:
    if not ids:
        return {}
    return {c.id: c for c in db.session.scalars(select(Cadre).where(Cadre.id.in_(ids)))}


def _add_cadre(person: PlannedCadre, active_from: date) -> None:
    add_to_roster(
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


def _update_cadre(cadre: Cadre, person: PlannedCadre, active_from: date) -> bool:
    """Write the person's values over the cadre's; return whether anything was to change.

    A cadre who left, or whose values are the same, is left alone. Values the file leaves
    empty keep what the roster holds. A new town, village or post starts a roster period
    on ``active_from`` (``periods.move_cadre``): the years before keep the old one.
    """
    if person.action in ("unchanged", "left") or not _differs(cadre, person):
        return False
    assert person.village_id is not None  # _create_villages has given every person one
    cadre.name = person.name
    move_cadre(
        cadre,
        town_id=person.town_id,
        village_id=person.village_id,
        posts=_join_posts(person.posts) if person.posts else cadre.posts,
        on=active_from,
    )
    if person.gender:
        cadre.gender = person.gender
    if person.birth_month:
        cadre.birth_month = person.birth_month
    if person.phone:
        cadre.phone = person.phone
    if person.id_number:
        cadre.id_number = person.id_number
    return True


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
            held.is_standing,
        )
        .correlate(Registration)
        .exists()
    )
    active = Registration.is_standing
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
    joined = last_start(cadre)
    if left_on < joined:
        raise TrainingError(_("离任日期不能早于进入花名册的日期（%(d)s）。", d=joined.isoformat()))
    end_service(cadre, left_on)


def link_registration_to_cadre(registration: Registration, cadre: Cadre | None) -> None:
    """Resolve an attendee by hand: this registration is (or, with None, is not) that cadre."""
    if registration.activity.kind != ActivityKind.TRAINING:
        raise TrainingError(_("只能关联培训活动的报名。"))
    if cadre is not None and registration.is_standing:
        taken = db.session.scalar(
            select(Registration.id).where(
                Registration.activity_id == registration.activity_id,
                Registration.cadre_id == cadre.id,
                Registration.is_standing,
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


def set_district_target(year: int, percent: Decimal | None) -> None:
    """Set, change or (with None) remove the district's own target for a year."""
    target = db.session.scalar(select(DistrictTarget).where(DistrictTarget.year == year))
    if percent is None:
        if target is not None:
            db.session.delete(target)
        return
    if target is None:
        target = DistrictTarget(year=year)
        db.session.add(target)
    target.target_percent = percent
