"""Translated names of roles and audit actions, for templates and forms."""

from flask_babel import lazy_gettext as _l

from ..models import AuditAction, Role

ROLE_LABELS = {
    Role.ADMIN: _l("管理员"),
    Role.ORGANIZER: _l("组织者（部门）"),
    Role.COORDINATOR: _l("镇街联络员"),
    Role.CHECKER: _l("签到员"),
    Role.CITIZEN: _l("市民"),
}
AUDIT_ACTION_LABELS = {
    AuditAction.CREATED: _l("创建账号"),
    AuditAction.UPDATED: _l("修改账号"),
    AuditAction.DISABLED: _l("停用"),
    AuditAction.ENABLED: _l("启用"),
    AuditAction.LOCKED: _l("登录失败过多被锁定"),
    AuditAction.UNLOCKED: _l("解锁"),
    AuditAction.LINK_ISSUED: _l("发出设置密码链接"),
    AuditAction.PASSWORD_SET_BY_LINK: _l("通过链接设置密码"),
    AuditAction.PASSWORD_CHANGED: _l("修改自己的密码"),
    AuditAction.PASSWORD_RESET_BY_CODE: _l("忘记密码：短信验证码重设"),
}
# The fields an audit entry's details name.
FIELD_LABELS = {
    "username": _l("用户名"),
    "display_name": _l("姓名"),
    "role": _l("角色"),
    "department": _l("部门"),
    "town": _l("镇街"),
    "email": _l("邮箱"),
    "phone": _l("手机号"),
    "must_change_password": _l("下次登录须修改密码"),
    "delivery": _l("发送方式"),
    "failed_logins": _l("连续失败次数"),
    "via": _l("来源"),
}


def role_choices() -> list[tuple[str, str]]:
    return [(role.value, str(label)) for role, label in ROLE_LABELS.items()]


# Values the details hold as codes.
VALUE_LABELS = {
    ("delivery", "shown"): _l("在页面上显示"),
    ("delivery", "sms"): _l("短信"),
    ("delivery", "email"): _l("邮件"),
    ("via", "web"): _l("管理页面"),
    ("via", "cli"): _l("命令行"),
}
