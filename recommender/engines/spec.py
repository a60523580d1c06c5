"""`EngineSpec`: what an engine folder declares about itself, in its `__init__.py` as `SPEC`.

Everything the service does with engines is derived from the specs of the engine folders under
`recommender/engines/` and the ENGINES setting (which served names are on, in fallback order):
the registry and selector, the training chain (stages ordered by `requires`), the choices of
`flask train`, the evaluators of `flask evaluate` and the engine nodes of `/health`.

Callables are named as "module:function" strings and imported only when used, so reading the
specs (every process does) imports no model code, and serving never imports training code.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from recommender.engines.base.engine import Engine
    from recommender.settings import Settings


def resolve(target: str) -> Callable[..., Any]:
    """The function a "module:function" string names (imported now)."""
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class TrainingEnv:
    """What a training stage is given: the settings, and the served engines by served name (a
    stage that compares itself with other engines, as RL does with NCF, finds them here)."""

    settings: Settings
    engines: Mapping[str, Engine] = field(default_factory=dict)

    def seed(self, seed: int | None) -> int:
        """`seed`, else TRAINING_SEED."""
        return self.settings.TRAINING_SEED if seed is None else seed


@dataclass(frozen=True)
class Stage:
    """A training stage: `flask train <name>`; one step of the `/update` chain.

    `train` names `function(env: TrainingEnv, seed: int, progress: bool) -> PipelineOutcome`.
    `requires`: stages that run before this one whenever both are in the chain (and are
    pulled into the chain when this one is)."""

    name: str
    train: str
    requires: tuple[str, ...] = ()
    help: str = ""


@dataclass(frozen=True)
class EngineSpec:
    """One engine folder.

    - `top_k`, `ranking`: its served names (a request's `engine_version`): the top-K variant and
      the variant that ranks every candidate; either may be None.
    - `serve`: "module:function" building the engine from `ServingDeps` (None: not served).
    - `stages`: its training stages, in order.
    - `evaluate`: "module:function(deps, ks) -> metrics" on held-out data (None: none).
    - `anonymous`: it can serve visitors who are not logged in.
    - `floor`: always ready and the last resort; asked for by name, anonymous visitors still
      get a trained anonymous engine first (the Random engines).
    - `pipeline`: the training pipeline whose verdict decides whether it has a model (the
      `pipeline` of its runs' metadata); defaults to `top_k`. `/health` reads that verdict.
    """

    name: str
    top_k: str | None = None
    ranking: str | None = None
    serve: str | None = None
    stages: tuple[Stage, ...] = ()
    evaluate: str | None = None
    anonymous: bool = False
    floor: bool = False
    description: str = ""
    pipeline: str | None = None
    served: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names = tuple(name for name in (self.top_k, self.ranking) if name)
        if names and self.serve is None:
            raise ValueError(f"engine {self.name!r} has served names but no serve factory")
        object.__setattr__(self, "served", names)
        if self.pipeline is None:
            object.__setattr__(self, "pipeline", self.top_k)
