"""Random and RandomRanking: uniform picks among the eligible candidates, replayable."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from recommender.engines.base.engine import RecommendationContext
from recommender.engines.random import SPEC
from recommender.engines.random.engine import RandomEngine

WHEN = dt.datetime(2024, 2, 21, 14, 19, 43)


def context(candidates, unique_id: str = "a", panel_id: str = "v1") -> RecommendationContext:
    return RecommendationContext(
        candidates=np.asarray(candidates, dtype=np.int64),
        panel_id=panel_id,
        unique_id=unique_id,
        timestamp=WHEN,
    )


def test_random_picks_k_distinct_candidates_with_uniform_scores():
    candidates = list(range(100, 150))
    result = RandomEngine().answer(context(candidates), 3, ranking=False)
    assert len(result.services) == len(set(result.services)) == 3
    assert set(result.services) <= set(candidates)
    assert result.scores == [1 / 50] * 3
    assert len(result.explanations) == len(result.explanations_short) == 3


@pytest.mark.parametrize("n", [0, 1, 2])
def test_random_with_fewer_candidates_than_k_returns_them_all(n):
    result = RandomEngine().answer(context(list(range(n))), 3, ranking=False)
    assert sorted(result.services) == list(range(n))


def test_random_replays_the_same_request_and_varies_across_visitors():
    candidates = list(range(1000))
    first = pick(candidates, "visitor-1")
    assert pick(candidates, "visitor-1") == first
    others = {pick(candidates, f"v{i}") for i in range(20)}
    assert len(others) > 15


def test_random_is_roughly_uniform():
    counts = np.zeros(10)
    for i in range(2000):
        counts[RandomEngine().answer(context(range(10), f"u{i}"), 2, False).services] += 1
    # 400 expected per service; a biased sampler would leave some far off.
    assert counts.min() > 300 and counts.max() < 500


def test_random_ranking_returns_every_candidate_shuffled():
    candidates = list(range(200, 260))
    result = RandomEngine().answer(context(candidates), 3, ranking=True)
    assert sorted(result.services) == candidates
    assert result.services != candidates
    assert result.scores == [round(1 / 60, 3)] * 60


def test_random_is_always_ready_has_no_model_and_serves_anonymous_visitors_last():
    engine = RandomEngine()
    assert engine.is_ready() == (True, None)
    assert engine.model_version() is None
    assert SPEC.served == ("Random", "RandomRanking")
    assert SPEC.anonymous and SPEC.floor


def pick(candidates, visitor: str) -> tuple[int, ...]:
    return tuple(RandomEngine().answer(context(candidates, visitor), 3, ranking=False).services)
