"""`flask db`: drop the catalogue or the trained models, regenerate SARSes."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


def confirm_destructive(what: str, force: bool, yes: bool) -> None:
    """Refuse in production unless --force; ask unless --yes."""
    if current_app.config["ENV_NAME"] == "production" and not force:
        raise click.UsageError(
            f"Refusing to {what} in production (FLASK_ENV=production); add --force if you mean it."
        )
    if not yes:
        click.confirm(f"This will {what}. Go on?", abort=True)


def destructive(function):
    """The --force and --yes options every destructive command takes."""
    function = click.option("--yes", is_flag=True, help="Do not ask for confirmation.")(function)
    return click.option(
        "--force", is_flag=True, help="Allow it in production (FLASK_ENV=production)."
    )(function)


@click.group(help="Maintenance of the stored data: drop the catalogue or models, rebuild SARSes.")
def db() -> None:
    pass


@db.command(
    "drop_mp",
    help=(
        "Delete the whole Marketplace catalogue (the 13 dump collections). Recommendations, "
        "user actions, SARSes and models stay. Serving has no catalogue until the next /update."
    ),
)
@destructive
@with_appcontext
def drop_mp(force: bool, yes: bool) -> None:
    from recommender.dump.loader import drop_catalogue

    confirm_destructive("delete the whole Marketplace catalogue", force, yes)
    drop_catalogue()
    click.echo("Catalogue dropped.")


@db.command(
    "drop_models",
    help=(
        "Delete every trained model version and its weights. Serving falls back to the "
        "engines that need no model (Random) until the next training."
    ),
)
@destructive
@with_appcontext
def drop_models(force: bool, yes: bool) -> None:
    from recommender.model_store.versions import drop_all

    confirm_destructive("delete every trained model", force, yes)
    click.echo(f"Deleted {drop_all()} model version(s).")


@db.command(
    "regenerate_sarses",
    help=(
        "Turn the recommendations and user actions not processed yet into SARSes (state, "
        "action, reward, next state), the training data of the RL engine, and print counts."
    ),
)
@click.option("--full", is_flag=True, help="Rebuild every visitor's SARSes, not only new ones.")
@with_appcontext
def regenerate_sarses(full: bool) -> None:
    from recommender.sessions import regenerate_sarses as regenerate

    for key, value in regenerate(full=full).items():
        click.echo(f"{key}: {value}")
