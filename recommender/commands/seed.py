"""`flask seed`: fill the database with a synthetic marketplace."""

from __future__ import annotations

from pathlib import Path

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


@seed.command(
    "seed_faker",
    help=(
        "Save the current catalogue's names, descriptions and tagline words as the synthetic "
        "generator's word lists (SYNTHETIC_WORD_LISTS, default recommender/synthetic/"
        "word_lists.json), so that `flask seed seed` and the demo read like real data."
    ),
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), help="Where to save the lists."
)
@with_appcontext
def seed_faker_command(output: Path | None) -> None:
    from recommender.synthetic.word_lists import (
        collect_word_lists,
        save_word_lists,
        word_lists_path,
    )

    try:
        lists = collect_word_lists()
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    path = output or word_lists_path()
    save_word_lists(lists, path)
    sizes = ", ".join(f"{len(values)} {key}" for key, values in lists.items())
    click.echo(f"Saved {sizes} to {path}")
