"""`flask train`: run one training stage, or the whole chain as `/update` does."""

from __future__ import annotations

import logging
import os
import socket
from contextlib import AbstractContextManager

import click
from flask.cli import with_appcontext

from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.registry import discover_specs
from recommender.engines.spec import Stage

logger = logging.getLogger(__name__)
FAILED, NOT_AVAILABLE = 1, 2


def seed_option(function):
    return click.option(
        "--seed",
        type=int,
        default=None,
        help="Seed of every random choice (default: TRAINING_SEED, 42).",
    )(function)


def training_turn() -> AbstractContextManager[object]:
    """Hold the update lease: a CLI training and a `/update` must not train at the same time."""
    from recommender.services.runtime import runtime
    from recommender.services.update import UPDATE_LEASE
    from recommender.store import leases

    def busy(training: str | None) -> SystemExit:
        click.echo(
            f"Error: an update is training ({training}); run this again when it has finished.",
            err=True,
        )
        return SystemExit(FAILED)

    holder = f"cli:{socket.gethostname()}:{os.getpid()}"
    ttl = runtime().settings.UPDATE_LEASE_TTL
    return leases.held(UPDATE_LEASE, holder, ttl, busy=busy)


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
    from recommender.services.runtime import runtime
    from recommender.services.update import train_stage

    if name not in {stage.name for stage in runtime().engines.stages()}:
        click.echo(
            f"Error: training stage {name!r} is not available: it is not in the training chain "
            "of the engines this installation serves (ENGINES).",
            err=True,
        )
        raise SystemExit(NOT_AVAILABLE)
    with training_turn():
        outcome = train_stage(
            name, runtime().settings.TRAINING_SEED if seed is None else seed, True
        )
    if not report(outcome):
        raise SystemExit(FAILED)


def stage_command(stage: Stage) -> click.Command:
    @seed_option
    @with_appcontext
    def command(seed: int | None) -> None:
        run_stage(stage.name, seed)

    return click.command(stage.name, help=stage.help)(command)


class TrainGroup(click.Group):
    """`flask train <stage>` for every training stage the engine folders declare, and `all`."""

    def _stages(self) -> dict[str, Stage]:
        return {stage.name: stage for spec in discover_specs() for stage in spec.stages}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self._stages(), *super().list_commands(ctx)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        stage = self._stages().get(name)
        return stage_command(stage) if stage else super().get_command(ctx, name)


@click.group(
    cls=TrainGroup,
    help=(
        "Train models. Each run stores a new candidate version; it goes live only when it "
        "passes validation, otherwise the previous version keeps serving. Exit code 1 when a "
        "stage is rejected or fails, 2 when the stage is not in the served engines' chain."
    ),
)
def train() -> None:
    pass


@train.command(
    "all",
    help=(
        "Run the whole training chain, as /update does after loading a dump (the stages of "
        "every engine in ENGINES, each after what it requires). Asks for confirmation first."
    ),
)
@seed_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def train_all(seed: int | None, yes: bool) -> None:
    from recommender.services.runtime import runtime
    from recommender.services.update import train_chain

    if not yes:
        click.confirm(
            "Every engine will be retrained; models that pass validation replace the live "
            "ones. Go on?",
            abort=True,
        )
    seed = runtime().settings.TRAINING_SEED if seed is None else seed
    with training_turn():
        outcomes = train_chain(None, seed=seed, progress=True)
    results = [report(outcome) for outcome in outcomes]
    if not all(results):
        raise SystemExit(FAILED)
