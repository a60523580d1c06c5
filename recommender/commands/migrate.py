"""`flask migrate`: apply, roll back, list and check migrations of the stored data."""

from __future__ import annotations

from typing import NoReturn

import click
from flask import current_app
from flask.cli import with_appcontext

from recommender.migrate import DEFAULT_DIR, CheckReport, MigrationError, Runner


def runner() -> Runner:
    """The runner for the app's migrations folder (MIGRATIONS_DIR overrides it, for tests)."""
    return Runner(current_app.config.get("MIGRATIONS_DIR") or DEFAULT_DIR)


def fail(error: MigrationError) -> NoReturn:
    click.echo(f"Error: {error}", err=True)
    raise SystemExit(1)


@click.group(
    help=(
        "Migrations of the stored data: files YYYYMMDDHHMMSS_name.py in "
        "recommender/migrate/migrations/, each with up() and down(). Applied ones are recorded "
        "in the `migration` collection with a checksum of their file."
    )
)
def migrate() -> None:
    pass


@migrate.command(
    help=(
        "Run every migration not applied yet, oldest first. Refuses while `check` fails or "
        "another runner holds the lock; stops at the first failing migration, which stays "
        "not applied (the ones before it stay applied)."
    )
)
@with_appcontext
def apply() -> None:
    try:
        applied = runner().apply(on_start=lambda name: click.echo(f"Applying {name}"))
    except MigrationError as error:
        fail(error)
    click.echo(f"Applied {len(applied)} migration(s)." if applied else "Nothing to apply.")


@migrate.command(
    help="Undo the newest applied migration (its down()) and record it as not applied."
)
@with_appcontext
def rollback() -> None:
    try:
        name = runner().rollback()
    except MigrationError as error:
        fail(error)
    click.echo(f"Rolled back {name}." if name else "Nothing to roll back.")


@migrate.command("list", help="Record new migration files, then list each one with its state.")
@with_appcontext
def list_command() -> None:
    records = runner().status()
    if not records:
        click.echo("No migrations.")
    for record in records:
        applied_at = f" {record.applied_at:%Y-%m-%d %H:%M:%S}" if record.applied_at else ""
        state = f"applied{applied_at}" if record.applied else "pending"
        click.echo(f"{record.name}  {state}")


def print_report(report: CheckReport) -> None:
    for problem in report.problems():
        click.echo(f"ERROR {problem}", err=True)
    for name in report.pending:
        click.echo(f"pending: {name}")
    for name in report.legacy:
        click.echo(f"legacy record of the original service (ignored): {name}")


@migrate.command(
    help=(
        "Compare the records with the files, without changing anything. Fails (exit 1) on an "
        "applied migration whose file was edited, a record whose file is missing, or a .py "
        "file not named YYYYMMDDHHMMSS_name.py; also lists pending migrations."
    )
)
@with_appcontext
def check() -> None:
    report = runner().check()
    print_report(report)
    if not report.ok:
        raise SystemExit(1)
    click.echo("Migrations are consistent.")


@migrate.command(
    help=(
        "Forget every record and rescan: all migrations become not applied, so the next "
        "`apply` runs all of them again."
    )
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def repopulate(yes: bool) -> None:
    if not yes:
        click.confirm(
            "Every migration will be marked not applied and re-run by apply. Go on?", abort=True
        )
    try:
        count = runner().repopulate()
    except MigrationError as error:
        fail(error)
    click.echo(f"Recorded {count} migration(s), none applied.")
