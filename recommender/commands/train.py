"""`flask train`: run one training stage, or the whole chain as `/update` does."""

from __future__ import annotations

import logging
import os
import socket
from contextlib import AbstractContextManager

import click
from flask import current_app
from flask.cli import with_appcontext

from recommender.engines.base.outcome import PipelineOutcome

logger = logging.getLogger(__name__)
FAILED, NOT_AVAILABLE = 1, 2
STAGES = ("ae", "embedding", "ncf", "rl", "popularity")
STAGE_HELP = {
    "ae": "Train the user and service autoencoders (content embeddings).",
    "embedding": "Recompute the dense embeddings of every user and service (needs the AE).",
    "ncf": "Train the Neural Collaborative Filtering model (needs the embeddings).",
    "rl": "Train the RL actor (TD3) on SARSes from user actions, or synthetic sessions.",
    "popularity": "Count orders and panel clicks per service for the Popularity engine.",
}


def seed_option(function):
    return click.option(
        "--seed",
        type=int,
        default=None,
        help="Seed of every random choice (default: TRAINING_SEED, 42).",
    )(function)


def training_turn() -> AbstractContextManager[None]:
    """Hold the update lease: a CLI training and a `/update` must not train at the same time."""
    from recommender import leases
    from recommender.services.update import UPDATE_LEASE, UPDATE_LEASE_TTL_S

    def busy(training: str | None) -> SystemExit:
        click.echo(
            f"Error: an update is training ({training}); run this again when it has finished.",
            err=True,
        )
        return SystemExit(FAILED)

    holder = f"cli:{socket.gethostname()}:{os.getpid()}"
    return leases.held(UPDATE_LEASE, holder, UPDATE_LEASE_TTL_S, busy=busy)


def report(outcome: PipelineOutcome) -> bool:
    """Print one stage's outcome; True when it is fine (promoted or skipped)."""
    version = f" v{outcome.model_version}" if outcome.model_version is not None else ""
    reason = f": {outcome.reason}" if outcome.reason else ""
    message = f"{outcome.pipeline}: {outcome.status}{version}{reason}"
    if outcome.ok:
        click.echo(message)
    elif outcome.status == "rejected":
        click.echo(f"Error: {message} (the previous version keeps serving)", err=True)
    else:
        click.echo(f"Error: {message}", err=True)
    return outcome.ok


def run_stage(name: str, seed: int | None) -> None:
    from recommender.engines import chain

    if name not in chain.stage_names():
        click.echo(f"Error: training stage {name!r} is not available in this build.", err=True)
        raise SystemExit(NOT_AVAILABLE)
    seed = current_app.config["TRAINING_SEED"] if seed is None else seed
    with training_turn():
        try:
            outcome = chain.stage(name)(seed=seed, progress=True)
        except Exception as error:  # reported as the stage's failure, like the update task
            logger.exception("Training stage %s crashed", name)
            outcome = PipelineOutcome(pipeline=name, status="failed", reason=repr(error))
    if not report(outcome):
        raise SystemExit(FAILED)


@click.group(
    help=(
        "Train models. Each run stores a new candidate version; it goes live only when it "
        "passes validation, otherwise the previous version keeps serving. Exit code 1 when a "
        "stage is rejected or fails, 2 when the stage is not available in this build."
    )
)
def train() -> None:
    pass


def stage_command(name: str) -> click.Command:
    @seed_option
    @with_appcontext
    def command(seed: int | None) -> None:
        run_stage(name, seed)

    return train.command(name, help=STAGE_HELP[name])(command)


for _name in STAGES:
    stage_command(_name)


@train.command(
    "all",
    help=(
        "Run the whole training chain, as /update does after loading a dump: "
        "AE -> embeddings -> NCF -> RL -> Popularity. Asks for confirmation first."
    ),
)
@seed_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def train_all(seed: int | None, yes: bool) -> None:
    from recommender.services.update import train_chain

    if not yes:
        click.confirm(
            "Every engine will be retrained; models that pass validation replace the live "
            "ones. Go on?",
            abort=True,
        )
    seed = current_app.config["TRAINING_SEED"] if seed is None else seed
    with training_turn():
        outcomes = train_chain(None, seed=seed, progress=True)
    results = [report(outcome) for outcome in outcomes]
    if not all(results):
        raise SystemExit(FAILED)
