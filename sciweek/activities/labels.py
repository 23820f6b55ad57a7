"""Translated names of the enumerations, for templates, forms and feeds."""

from flask_babel import lazy_gettext as _l

from ..models import ActivityKind, ActivityStatus, Audience

KIND_LABELS = {
    ActivityKind.OUTREACH: _l("科技下乡"),
    ActivityKind.SCIENCE_DAY: _l("科普日"),
    ActivityKind.ST_WEEK: _l("科技活动周"),
    ActivityKind.TRAINING: _l("培训"),
}
STATUS_LABELS = {
    ActivityStatus.DRAFT: _l("草稿"),
    ActivityStatus.PUBLISHED: _l("已发布"),
    ActivityStatus.CANCELLED: _l("已取消"),
}
AUDIENCE_LABELS = {
    Audience.PUBLIC: _l("公众"),
    Audience.CADRES: _l("农村基层干部"),
}


def kind_choices() -> list[tuple[str, str]]:
    return list(KIND_LABELS.items())


def audience_choices() -> list[tuple[str, str]]:
    return list(AUDIENCE_LABELS.items())
