"""Training stage "ease": EASE on the evaluation protocol's split (engines/base/collaborative.py),
lambda chosen from a small grid on the tune part of validation, promoted by the shared gate.

The Gram matrix is computed once; each lambda costs one Cholesky inversion (see model.py). The
stored version holds the modelled service ids, B and their training counts (the prior).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from recommender.engines.base.collaborative import CollaborativePipeline, Prepared, choose
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.base.pipeline import Artifact, RunContext, TrainingEnv
from recommender.engines.base.scoring import component_scorer
from recommender.engines.ease import MODEL_NAME
from recommender.engines.ease.model import (
    EASEComponent,
    component,
    ease_weights,
    gram,
    modelled_rows,
)
from recommender.id_index import UNKNOWN, IdIndex


@dataclass(frozen=True)
class EASEConfig:
    lambdas: tuple[float, ...] = (100.0, 400.0, 1600.0)


@dataclass(frozen=True)
class Fitted:
    model: EASEComponent
    lam: float
    counts: np.ndarray  # training positives of each modelled service
    split: str


class EASEPipeline(CollaborativePipeline[Fitted]):
    name = "EASE"
    label = "EASE"

    def __init__(self, config: EASEConfig | None = None):
        self.config = config or EASEConfig()

    def train(self, data: Prepared, ctx: RunContext) -> Fitted:
        interactions, split = data.data, data.split
        counts = split.train_counts(interactions.width)
        rows = modelled_rows(counts, ctx.env.settings.EASE_MAX_SERVICES)
        ids = interactions.services.ids[rows - 1]
        columns = IdIndex(ids).rows(interactions.services.ids[split.train_services - 1])
        modelled = columns != UNKNOWN
        started = time.perf_counter()
        gram_matrix = gram(
            split.train_users[modelled],
            columns[modelled],
            interactions.users.rows_total,
            len(ids) + 1,
        )
        ctx.details.update(modelled_services=len(ids), gram_s=time.perf_counter() - started)

        def fit(lam: float) -> EASEComponent:
            return component(0, ids, ease_weights(gram_matrix, lam), counts[rows])

        lam, model = choose(
            self.config.lambdas,
            fit,
            lambda model: component_scorer(model, interactions, split),
            split.tune,
            ctx.seed,
            ctx,
        )
        return Fitted(model, lam, counts[rows], split.key)

    def package(self, model: Fitted, metrics: dict, ctx: RunContext) -> Artifact:
        return Artifact(
            MODEL_NAME,
            {
                "service_ids": torch.tensor(model.model.services.ids),
                "weights": torch.from_numpy(model.model.weights),
                "counts": torch.from_numpy(model.counts.astype(np.float32)),
            },
            {"lambda": model.lam, "split": model.split},
        )


def train(env: TrainingEnv, seed: int | None = None, progress: bool = False) -> PipelineOutcome:
    return EASEPipeline().run(env, seed, progress)
