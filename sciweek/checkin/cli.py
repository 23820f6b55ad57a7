"""``flask --app sciweek create-token USERNAME``: an API token for a scanner device."""

from __future__ import annotations

import click
from flask import Flask
from sqlalchemy import select

from ..extensions import db
from ..models import User
from ..permissions import DOOR_ROLES
from ..transactions import commits
from .services import create_api_token


def init_app(app: Flask) -> None:
    app.cli.add_command(create_token_command)


@click.command("create-token")
@click.argument("username")
@click.option("--name", default="", help="What the token is for, e.g. the device.")
@commits
def create_token_command(username, name):
    """Create a check-in API token for USERNAME; it is printed once and not stored."""
    user = db.session.scalar(select(User).where(User.username == username))
    if user is None:
        raise click.ClickException(f"No user {username}.")
    if user.role not in DOOR_ROLES:
        raise click.ClickException(f"{username} is a {user.role}; tokens are for door staff.")
    _token, raw = create_api_token(user, name)
    click.echo(raw)
