"""Serving the toy engine: a weight lookup per candidate."""

from __future__ import annotations

import numpy as np
from recommender.engines.toy import MODEL_NAME

from recommender.engines.base.engine import EngineResult, ServingDeps, TrainedEngine, top


class Toy(TrainedEngine):
    def __init__(self, deps: ServingDeps):
        self.deps = deps

    def component(self):
        return self.deps.models.get(MODEL_NAME, lambda stored: stored)

    def scores(self, candidates: np.ndarray) -> np.ndarray:
        stored = self.component()
        ids, weights = stored.tensors["ids"].numpy(), stored.tensors["weights"].numpy()
        at = np.minimum(np.searchsorted(ids, candidates), len(ids) - 1)
        return np.where(ids[at] == candidates, weights[at], 0.0)

    def recommend(self, context, k: int) -> EngineResult:
        scores = self.scores(context.candidates)
        order = top(context.candidates, scores, k)
        return EngineResult.build(context.candidates[order], scores[order], "Toy", "Toy")


def build(deps: ServingDeps) -> Toy:
    return Toy(deps)


def evaluate(deps: ServingDeps, ks) -> dict:
    """Share of catalogue users whose last accessed service is among the toy's top K."""
    catalogue, engine = deps.catalogue(), Toy(deps)
    ranked = catalogue.recommendable_ids[
        np.argsort(-engine.scores(catalogue.recommendable_ids), kind="stable")
    ]
    last = [services[-1] for services in catalogue.users.values() if len(services)]
    return {"users": len(last), **{f"hr@{k}": float(np.isin(last, ranked[:k]).mean()) for k in ks}}
