"""`Random` (K services drawn uniformly) and `RandomRanking` (every candidate, shuffled)."""

from __future__ import annotations

import numpy as np

from recommender.engines.base.engine import (
    Engine,
    EngineResult,
    RecommendationContext,
    ServingDeps,
)

LONG = "This service was picked at random among the services that match your search."
SHORT = "Random pick"
RANKING_LONG = "This list is in random order: no ranking model is available for it."
RANKING_SHORT = "Random order"


class RandomEngine(Engine):
    def is_ready(self) -> tuple[bool, str | None]:
        return True, None

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        # Fewer eligible services than K: all of them, never an error.
        n = len(context.candidates)
        chosen = context.rng().choice(context.candidates, size=min(k, n), replace=False)
        return EngineResult.build(chosen, [1.0 / n] * len(chosen), LONG, SHORT)

    def slate_marginals(self, context: RecommendationContext, k: int) -> np.ndarray:
        """Every candidate is equally likely at every position: 1/n (the draw is seeded by
        the request, so one request always gets the same slate, but over requests it is
        uniform, and these are the probabilities off-policy estimators need)."""
        n = len(context.candidates)
        return np.full((n, min(k, n)), 1.0 / n if n else 0.0)

    def rank(self, context: RecommendationContext) -> EngineResult:
        order = context.rng().permutation(context.candidates).tolist()
        n = len(order)
        # One float object for every score: a stored ranking does not keep ~1,000 copies.
        score = round(1.0 / n, 3)
        return EngineResult(order, [score] * n, [RANKING_LONG] * n, [RANKING_SHORT] * n)


def build(deps: ServingDeps) -> RandomEngine:
    return RandomEngine()
