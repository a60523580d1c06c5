"""`Random` (K services drawn uniformly) and `RandomRanking` (every candidate, shuffled).

Both draw with `generator` from the request's own seed (`RecommendationContext.seed`: the same
request replays) and record how they drew (`EngineResult.draw`): each candidate is shown at each
position with probability 1/n. The top-K draw is `exploration.choose` with epsilon 1 (uniform K
without replacement, in random order), so replaying `choose` with the recorded seed gives the
slate; the ranking is `generator(seed).permutation(candidates)` (a full choose costs several
times more).
"""

from __future__ import annotations

import math

import numpy as np

from recommender.engines.base.engine import (
    Draw,
    Engine,
    EngineResult,
    RecommendationContext,
    ServingDeps,
    generator,
)
from recommender.evaluation.exploration import Exploration, choose

LONG = "This service was picked at random among the services that match your search."
SHORT = "Random pick"
RANKING_LONG = "This list is in random order: no ranking model is available for it."
RANKING_SHORT = "Random order"
UNIFORM = Exploration("epsilon", epsilon=1.0)


class RandomEngine(Engine):
    def is_ready(self) -> tuple[bool, str | None]:
        return True, None

    def recommend(self, context: RecommendationContext, k: int) -> EngineResult:
        # Fewer eligible services than K: all of them, never an error.
        n = len(context.candidates)
        seed = context.seed()
        shown = min(k, n)
        # With epsilon 1 the greedy slate is never shown: any K positions stand for it.
        slate = choose(np.zeros(n), shown, UNIFORM, generator(seed), np.arange(shown))
        result = EngineResult.build(
            context.candidates[slate.positions], [1.0 / n] * shown, LONG, SHORT
        )
        result.draw = Draw(UNIFORM, seed, slate.propensities.tolist(), slate.slate_propensity)
        return result

    def slate_marginals(self, context: RecommendationContext, k: int) -> np.ndarray:
        """Every candidate is equally likely at every position: 1/n (the draw is seeded by
        the request, so one request always gets the same slate, but over requests it is
        uniform, and these are the probabilities off-policy estimators need)."""
        n = len(context.candidates)
        return np.full((n, min(k, n)), 1.0 / n if n else 0.0)

    def rank(self, context: RecommendationContext) -> EngineResult:
        seed = context.seed()
        order = generator(seed).permutation(context.candidates).tolist()
        n = len(order)
        # One float object for every score: a stored ranking does not keep ~1,000 copies.
        score = round(1.0 / n, 3)
        # P(the order) = 1/n!, which underflows to 0 past n = 170, as it should.
        slate = math.exp(-math.lgamma(n + 1))
        draw = Draw(UNIFORM, seed, [1.0 / n] * n, slate)
        return EngineResult(order, [score] * n, [RANKING_LONG] * n, [RANKING_SHORT] * n, draw)


def build(deps: ServingDeps) -> RandomEngine:
    return RandomEngine()
