"""`flask seed`: fill the database with a synthetic marketplace."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.group(help="Fill the database with synthetic data (refused in production).")
def seed() -> None:
    if current_app.config["ENV_NAME"] == "production":
        raise click.UsageError("Seeding writes synthetic data: it is refused in production.")


@seed.command(
    "seed",
    help=(
        "Replace the catalogue with a seeded synthetic marketplace (services, users with "
        "interests and orders, projects) and add browsing sessions (recommendations shown, "
        "clicks, orders)."
    ),
)
@click.option("--users", default=200, show_default=True, help="Number of users.")
@click.option("--services", default=100, show_default=True, help="Number of services.")
@click.option("--sessions", default=500, show_default=True, help="Browsing sessions to add.")
@click.option("--seed", "seed_value", default=42, show_default=True, help="Random seed.")
@with_appcontext
def seed_command(users: int, services: int, sessions: int, seed_value: int) -> None:
    from recommender.services.seeding import seed_database

    report = seed_database(users, services, sessions, seed_value)
    click.echo(
        f"Seeded {report.services} services, {report.users} users, "
        f"{report.recommendations} recommendations and {report.user_actions} user actions."
    )
