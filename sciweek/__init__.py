"""sciweek: science outreach, S&T week and rural cadre training for a district."""

from __future__ import annotations

import os

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import (
    cli,
    database,
    errors,
    i18n,
    inputs,
    jobs,
    links,
    notifications,
    permissions,
    security,
    transactions,
)
from .accounts import auth
from .accounts.admin_routes import bp as users_bp
from .accounts.routes import bp as accounts_bp
from .activities.routes import bp as activities_bp
from .checkin.roster_routes import bp as roster_door_bp
from .checkin.routes import bp as checkin_bp
from .config import instance_path, load_config
from .extensions import csrf, db, limiter, migrate
from .feeds.routes import bp as feeds_bp
from .health import bp as health_bp
from .manage.routes import bp as manage_bp
from .notifications.routes import bp as notifications_bp
from .places.routes import bp as places_bp
from .privacy.routes import bp as privacy_bp
from .registration.routes import bp as registration_bp
from .reports.routes import bp as reports_bp
from .summaries.routes import bp as summaries_bp
from .training.routes import bp as training_bp

PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory: config, then extensions, blueprints, error pages and CLI."""
    app = Flask(
        __name__,
        instance_path=instance_path(os.path.join(PROJECT_ROOT, "instance")),
        template_folder=os.path.join(PROJECT_ROOT, "templates"),
        static_folder=os.path.join(PROJECT_ROOT, "static"),
    )
    app.config.from_mapping(load_config(app.instance_path))
    if test_config:
        app.config.from_mapping(test_config)

    if app.config["SCIWEEK_PROXY_COUNT"]:
        n = app.config["SCIWEEK_PROXY_COUNT"]
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n
        )

    register_extensions(app)
    register_blueprints(app)
    register_errors(app)
    register_security_headers(app)
    register_cli(app)
    return app


def register_extensions(app: Flask) -> None:
    inputs.init_app(app)  # first: the URL converters must be in place before any rule
    db.init_app(app)
    database.init_app(app)
    transactions.init_app(app)
    migrate.init_app(
        app,
        db,
        directory=os.path.join(PROJECT_ROOT, "migrations"),
        compare_type=True,
        render_as_batch=True,
        render_item=database.render_migration_item,
    )
    csrf.init_app(app)
    limiter.init_app(app)
    i18n.init_app(app)
    links.init_app(app)
    auth.init_app(app)
    permissions.init_app(app)
    jobs.init_app(app)
    notifications.init_app(app)


def register_blueprints(app: Flask) -> None:
    app.register_blueprint(health_bp)
    app.register_blueprint(activities_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(manage_bp, url_prefix="/manage")
    app.register_blueprint(users_bp, url_prefix="/manage/users")
    app.register_blueprint(registration_bp)
    app.register_blueprint(checkin_bp)
    app.register_blueprint(roster_door_bp)
    app.register_blueprint(feeds_bp)
    app.register_blueprint(training_bp)
    app.register_blueprint(notifications_bp)
    app.register_blueprint(privacy_bp)
    app.register_blueprint(reports_bp)
    app.register_blueprint(summaries_bp, url_prefix="/manage")
    app.register_blueprint(places_bp)


def register_errors(app: Flask) -> None:
    errors.init_app(app)


def register_security_headers(app: Flask) -> None:
    security.init_app(app)


def register_cli(app: Flask) -> None:
    cli.init_app(app)
