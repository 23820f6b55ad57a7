"""Translated names of notification events, statuses and reasons (back office)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..models import NotificationEvent, OutboxStatus

EVENT_LABELS = {
    NotificationEvent.CONFIRMED: _l("报名成功"),
    NotificationEvent.WAITLISTED: _l("候补登记"),
    NotificationEvent.PROMOTED: _l("候补转正"),
    NotificationEvent.CHANGED: _l("时间地点变更"),
    NotificationEvent.CANCELLED: _l("取消通知"),
    NotificationEvent.REMINDER: _l("活动提醒"),
    NotificationEvent.BROADCAST: _l("群发消息"),
    NotificationEvent.INVITATION: _l("培训邀请"),
    NotificationEvent.VERIFICATION: _l("验证码"),
    NotificationEvent.SET_PASSWORD: _l("设置密码邮件"),
    NotificationEvent.PASSWORD_RESET: _l("重置密码邮件"),
    NotificationEvent.STAFF_EMAIL: _l("工作人员邮件"),
}

STATUS_LABELS = {
    OutboxStatus.QUEUED: _l("排队中"),
    OutboxStatus.SENDING: _l("发送中"),
    OutboxStatus.SENT: _l("已发送"),
    OutboxStatus.FAILED: _l("发送失败"),
    OutboxStatus.DEFERRED: _l("延后发送（夜间免打扰）"),
    OutboxStatus.SKIPPED: _l("未发送"),
}

REASON_LABELS = {
    "invalid_phone": _l("手机号无效"),
    "daily_cap": _l("已达当日条数上限"),
    "superseded": _l("已被更新的通知取代"),
    "opted_out": _l("本人已退订"),
    "gateway": _l("短信网关拒绝或不可用"),
    "interrupted": _l("发送中断，为免重复未重发"),
    "invalid_email": _l("邮箱地址无效"),
    "mail_server": _l("邮件服务器拒绝或不可用"),
}
