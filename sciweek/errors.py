"""Error pages: a clear page in the visitor's language, JSON for the API."""

from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .extensions import db
from .inputs import InvalidInput


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def init_app(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(error: CSRFError):
        message = _("表单已过期或来源无效，请刷新页面后重试。")
        if _wants_json():
            return jsonify(error="csrf", message=message), 400
        return render_template("errors/error.html", code=400, message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        messages = {
            400: _("请求无效。"),
            401: _("请先登录。"),
            403: _("您没有权限访问此页面。"),
            404: _("页面不存在。"),
            405: _("不支持此请求方法。"),
            413: _("上传的内容太大。"),
            429: _("请求太频繁，请稍后再试。"),
        }
        message = messages.get(error.code, error.name)
        if isinstance(error, InvalidInput):
            message = error.message
        if _wants_json():
            return jsonify(error=error.name, message=message), error.code
        return render_template("errors/error.html", code=error.code, message=message), error.code

    @app.errorhandler(500)
    def internal_error(error):
        db.session.rollback()
        message = _("服务器出错了，请稍后再试。")
        if _wants_json():
            return jsonify(error="server_error", message=message), 500
        return render_template("errors/error.html", code=500, message=message), 500
