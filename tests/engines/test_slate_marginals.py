"""`Engine.slate_marginals`: what an engine would show where, for off-policy evaluation."""

from __future__ import annotations

import numpy as np

from recommender.engines.base.engine import RecommendationContext
from recommender.engines.random.engine import RandomEngine
from tests.evaluation.logged import First


def context(candidates) -> RecommendationContext:
    return RecommendationContext(candidates=np.asarray(candidates, dtype=np.int64))


def test_a_deterministic_engine_puts_one_on_its_slate():
    result = First().slate_marginals(context([40, 10, 30, 20]), 3)

    expected = np.zeros((4, 3))
    expected[[0, 1, 2], [0, 1, 2]] = 1.0  # First shows the first three candidates, in order
    np.testing.assert_array_equal(result, expected)


def test_random_is_uniform_over_candidates_at_every_position():
    result = RandomEngine().slate_marginals(context([5, 6, 7, 8]), 3)

    np.testing.assert_array_equal(result, np.full((4, 3), 0.25))


def test_fewer_candidates_than_k_fill_fewer_positions():
    assert First().slate_marginals(context([1, 2]), 3).shape == (2, 2)
    assert RandomEngine().slate_marginals(context([]), 3).shape == (0, 0)
