"""Training stage "ials": implicit's ALS on the evaluation protocol's split
(engines/base/collaborative.py); factors, regularization and alpha chosen from a small grid on
the tune part of validation; promoted by the shared gate. The stored version holds the service
ids, their factors, the chosen setting and the training counts (the prior)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import product

import numpy as np
import torch

from recommender.engines.base.collaborative import CollaborativePipeline, Prepared, choose
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.pipeline import Artifact, RunContext, TrainingEnv
from recommender.engines.base.scoring import component_scorer
from recommender.engines.ials import MODEL_NAME
from recommender.engines.ials.model import IALSComponent, Setting, component, fit
from recommender.evaluation.protocol import require_finite


@dataclass(frozen=True)
class IALSConfig:
    factors: tuple[int, ...] = (64, 128)
    regularization: tuple[float, ...] = (10.0, 100.0)
    alpha: tuple[float, ...] = (1.0, 5.0)

    def grid(self) -> list[Setting]:
        return [Setting(*s) for s in product(self.factors, self.regularization, self.alpha)]


@dataclass(frozen=True)
class Fitted:
    model: IALSComponent
    setting: Setting
    counts: np.ndarray
    split: str


class IALSPipeline(CollaborativePipeline[Fitted]):
    name = "iALS"
    label = "iALS"

    def __init__(self, config: IALSConfig | None = None):
        self.config = config or IALSConfig()

    def train(self, data: Prepared, ctx: RunContext) -> Fitted:
        interactions, split = data.data, data.split
        counts = split.train_counts(interactions.width)
        seed = int(ctx.rng.integers(2**31))

        def fitted(setting: Setting) -> IALSComponent:
            factors = fit(
                split.train_users,
                split.train_services,
                interactions.users.rows_total,
                interactions.width,
                setting,
                seed,
                torch.get_num_threads(),  # as many as the other engines' training takes
            )
            require_finite(factors, f"iALS factors {setting}")
            return component(0, interactions.services.ids, factors[1:], counts[1:], setting)

        setting, model = choose(
            self.config.grid(),
            fitted,
            lambda model: component_scorer(model, interactions, split),
            split.tune,
            ctx.seed,
            ctx,
        )
        return Fitted(model, setting, counts[1:], split.key)

    def package(self, model: Fitted, metrics: dict, ctx: RunContext) -> Artifact:
        return Artifact(
            MODEL_NAME,
            {
                "service_ids": torch.tensor(model.model.services.ids),
                "factors": torch.from_numpy(model.model.model.item_factors[1:].copy()),
                "counts": torch.from_numpy(model.counts.astype(np.float32)),
            },
            {"setting": asdict(model.setting), "split": model.split},
        )


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return IALSPipeline().run(env, seed, progress)
