"""Helpers for tests on an app: its training environment, engines, stages and settings."""

from __future__ import annotations

from recommender.engines.spec import TrainingEnv


def env() -> TrainingEnv:
    """The `TrainingEnv` of the app whose context is active (as `/update` builds it)."""
    from recommender.services.update import training_env

    return training_env()


def use_stages(monkeypatch, stages: dict) -> None:
    """Make the current app's training chain `stages` (name -> function(env, seed, progress)),
    in that order; {} trains nothing."""
    from recommender.engines.spec import Stage
    from recommender.services import update
    from recommender.services.runtime import runtime

    chain = [Stage(name, f"tests:{name}") for name in stages]
    monkeypatch.setattr(runtime().engines, "stages", lambda: chain)
    monkeypatch.setattr(update, "resolve", lambda target: stages[target.partition(":")[2]])


def engine(name: str):
    """The current app's engine serving `name` (e.g. "NCF"; "NCFRanking" is the same engine)."""
    from recommender.services.runtime import runtime

    return runtime().engines.find(name).engine


def deps():
    """The current app's `ServingDeps`."""
    from recommender.services.runtime import runtime

    return runtime().deps


def use_evaluators(monkeypatch, evaluators: dict) -> None:
    """Make the current app's offline evaluators `evaluators` (name -> function(deps, ks))."""
    from recommender.services import evaluation
    from recommender.services.runtime import runtime

    targets = {name: f"tests:{name}" for name in evaluators}
    monkeypatch.setattr(runtime().engines, "evaluators", lambda: targets)
    monkeypatch.setattr(evaluation, "resolve", lambda target: evaluators[target.partition(":")[2]])


def change_settings(**changes) -> None:
    """Give the current app's runtime settings with `changes` (as a restart with them would);
    RS_DATABUS_* names mean the TEST_ ones, as in `create_app("testing", ...)`."""
    from recommender.services.runtime import runtime
    from recommender.settings import DATABUS_KEYS

    current = runtime()
    if current.settings.testing:
        changes = {(f"TEST_{k}" if k in DATABUS_KEYS else k): v for k, v in changes.items()}
    current.settings = current.settings.model_copy(update=changes)
