"""``flask --app sciweek ...`` commands."""

from __future__ import annotations

import secrets

import click
from flask import Flask
from sqlalchemy import select

from .accounts.services import AccountError, create_user
from .checkin import cli as checkin_cli
from .demo import seed_demo
from .extensions import db
from .models import ROLE_VALUES, TOWN_ORDER, Town, TownAlias
from .placenames import normalize_place
from .places.services import PlaceError, add_town, add_town_alias, remove_town_alias
from .registration.services import purge_expired_registrations
from .reports import cli as reports_cli
from .training import cli as training_cli
from .transactions import commits


def init_app(app: Flask) -> None:
    app.cli.add_command(create_user_command)
    app.cli.add_command(town_group)
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(purge_registrations_command)
    checkin_cli.init_app(app)
    training_cli.init_app(app)
    reports_cli.init_app(app)


@click.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLE_VALUES), required=True)
@click.option("--department", "department_code", help="Department code (organizers).")
@click.option("--town", "town_code", help="Town code (coordinators).")
@click.option("--password", help="Password; a random one is generated and printed if omitted.")
@click.option("--name", "display_name", default="", help="Display name.")
@commits
def create_user_command(username, role, department_code, town_code, password, display_name):
    """Create a user account with a role."""
    generated = password is None
    password = password or secrets.token_urlsafe(12)
    try:
        create_user(
            username,
            role,
            password,
            department_code=department_code,
            town_code=town_code,
            display_name=display_name,
            # A password someone else chose: its owner chooses their own at first log-in.
            must_change_password=role != "citizen",
            via="cli",
        )
    except AccountError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Created {role} {username}.")
    if generated:
        click.echo(f"Password: {password}")


@click.group("town")
def town_group():
    """Manage towns (镇/街)."""


@town_group.command("add")
@click.argument("name")
@click.option("--code", required=True, help="A short unique code, e.g. chengguan.")
@click.option("--position", type=int, help="Where it is listed (smaller first); default: last.")
@commits
def town_add(name, code, position):
    """Add a town (the same rules as the web page, places.services)."""
    try:
        town = add_town(name, code, position)
    except PlaceError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Added town {town.name} ({town.code}).")


@town_group.command("list")
def town_list():
    """List towns in their order: position, code, name, villages."""
    for town in db.session.scalars(select(Town).order_by(*TOWN_ORDER)):
        click.echo(f"{town.position}\t{town.code}\t{town.name}\t{len(town.villages)} villages")


@town_group.group("alias")
def town_alias_group():
    """Other ways rosters write a town's name (城关 for 城关镇)."""


def _town_by_code(code: str) -> Town:
    town = db.session.scalar(select(Town).where(Town.code == code.strip()))
    if town is None:
        raise click.ClickException(f"No town with code {code}.")
    return town


@town_alias_group.command("add")
@click.argument("code")
@click.argument("alias")
@commits
def town_alias_add(code, alias):
    """Let rosters write ALIAS for the town with CODE."""
    town = _town_by_code(code)
    try:
        entry = add_town_alias(town, alias)
    except PlaceError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Alias {entry.alias} now means {town.name} ({town.code}).")


@town_alias_group.command("remove")
@click.argument("alias")
@commits
def town_alias_remove(alias):
    """Stop reading ALIAS as a town."""
    entry = db.session.scalar(select(TownAlias).where(TownAlias.alias == normalize_place(alias)))
    if entry is None:
        raise click.ClickException(f"No alias {alias}.")
    remove_town_alias(entry)
    click.echo(f"Removed alias {entry.alias}.")


@town_alias_group.command("list")
def town_alias_list():
    """List the aliases of every town."""
    for town in db.session.scalars(select(Town).order_by(*TOWN_ORDER)):
        click.echo(f"{town.code}\t{town.name}\t{'、'.join(a.alias for a in town.aliases)}")


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Only seed a database that has no towns yet.")
@commits
def seed_demo_command(if_empty):
    """Load demo towns, departments, campaigns, activities and users (idempotent)."""
    if if_empty and db.session.scalar(select(Town.id).limit(1)):
        click.echo("Database already has data; demo not loaded.")
        return
    summary = seed_demo()
    click.echo(summary)


@click.command("purge-registrations")
@commits
def purge_registrations_command():
    """Remove names and phones of registrations whose activity ended over a year ago."""
    count = purge_expired_registrations()
    click.echo(f"Anonymised {count} registrations.")
