"""What one app's services share: its settings, catalogue, model cache and engines.

Built once per app by `create_app` (`attach`); services reach it through `runtime()` inside
the app context. Engines never see it: they get `ServingDeps` when the registry builds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from recommender.catalogue import Catalogue, CatalogueCache
from recommender.engines.base.engine import ServingDeps
from recommender.engines.registry import Registry, discover_specs
from recommender.model_store.cache import ModelCache
from recommender.services.experiments.assignment import RunningExperiments
from recommender.services.serving_policy import ServingPolicy
from recommender.settings import Settings

EXTENSION = "recommender"


@dataclass
class Runtime:
    app: Flask
    settings: Settings
    deps: ServingDeps
    engines: Registry
    experiments: RunningExperiments
    policy: ServingPolicy

    def catalogue(self) -> Catalogue:
        return self.deps.catalogue()


def attach(app: Flask, settings: Settings) -> Runtime:
    """Build `app`'s runtime (engines from the engine folders' specs and ENGINES)."""
    policy = ServingPolicy(settings)  # first: bad exploration settings stop the start
    models = ModelCache(settings.MODEL_RELOAD_INTERVAL)
    deps = ServingDeps(settings, models, CatalogueCache(models.stamps))
    engines = Registry(discover_specs(), settings.ENGINES, deps)
    experiments = RunningExperiments(models.stamps)
    built = Runtime(app, settings, deps, engines, experiments, policy)
    app.extensions[EXTENSION] = built
    return built


def runtime() -> Runtime:
    """The current app's runtime."""
    return current_app.extensions[EXTENSION]
