"""HR@K / NDCG@K on hand-computed ranks, and the seeded sampler behind every evaluation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recommender.evaluation.metrics import (
    hit_rate,
    ndcg,
    positive_ranks,
    ranking_metrics,
    sample_excluding,
    score_metrics,
)


def test_rank_zero_is_a_full_hit():
    assert hit_rate([0], 1) == 1.0
    assert ndcg([0], 1) == 1.0


def test_rank_two_counts_within_k_with_log_discount():
    assert hit_rate([2], 3) == 1.0
    assert hit_rate([2], 2) == 0.0
    assert ndcg([2], 3) == pytest.approx(1 / math.log2(4))  # 0.5
    assert ndcg([2], 2) == 0.0


def test_metrics_average_over_users():
    ranks = np.array([0, 1, 9, 10, 50])
    result = ranking_metrics(ranks, ks=(3, 10))

    assert result["users"] == 5
    assert result["hr@3"] == pytest.approx(2 / 5)
    assert result["hr@10"] == pytest.approx(3 / 5)
    assert result["ndcg@10"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(11)) / 5)
    assert result["ndcg@3"] == pytest.approx((1 + 1 / math.log2(3)) / 5)


def test_no_users_gives_zeros_not_nan():
    assert ranking_metrics(np.array([], dtype=np.int64)) == {
        "users": 0,
        "hr@3": 0.0,
        "ndcg@3": 0.0,
        "hr@10": 0.0,
        "ndcg@10": 0.0,
    }


def test_rank_counts_negatives_scoring_higher_and_ignores_padding():
    positive = np.array([0.5, 0.9, 0.1])
    negatives = np.array(
        [
            [0.9, 0.2, 0.7, -np.inf],
            [0.1, 0.2, 0.3, 0.4],
            [0.2, 0.3, 0.4, 0.5],
        ]
    )

    np.testing.assert_array_equal(positive_ranks(positive, negatives), [2, 0, 4])


def test_ties_are_broken_at_random_but_seeded():
    positive = np.zeros(4000)
    negatives = np.zeros((4000, 9))  # a constant scorer: every candidate tied

    first = positive_ranks(positive, negatives, np.random.default_rng(3))
    again = positive_ranks(positive, negatives, np.random.default_rng(3))

    np.testing.assert_array_equal(first, again)
    assert first.min() == 0 and first.max() == 9
    # Chance level (1 in 10), neither optimistic (1.0) nor pessimistic (0.0).
    assert hit_rate(first, 1) == pytest.approx(0.1, abs=0.02)


def test_score_metrics_of_a_perfect_and_a_reversed_scorer():
    negatives = np.tile(np.arange(99, dtype=float), (5, 1))

    assert score_metrics(np.full(5, 100.0), negatives)["ndcg@10"] == 1.0
    assert score_metrics(np.full(5, -1.0), negatives)["hr@10"] == 0.0


def test_sampler_avoids_forbidden_pairs_stays_in_pool_and_does_not_repeat():
    rng = np.random.default_rng(7)
    width = 50
    rows = np.arange(1, 41)
    pool = np.arange(1, 31)  # items 31..49 are not in the pool (e.g. not recommendable)
    forbidden_items = rng.integers(1, 31, size=(40, 10))
    forbidden = np.unique(rows[:, None] * width + forbidden_items)

    sampled = sample_excluding(
        np.random.default_rng(1), rows, pool, forbidden, 15, width, replace=False
    )

    assert sampled.shape == (40, 15)
    assert np.isin(sampled, pool).all()
    assert not np.isin(rows[:, None] * width + sampled, forbidden).any()
    assert all(len(set(row)) == 15 for row in sampled.tolist())


def test_sampler_is_seeded():
    args = (np.arange(20), np.arange(100), np.array([], dtype=np.int64), 10, 100)

    same = sample_excluding(np.random.default_rng(5), *args)
    again = sample_excluding(np.random.default_rng(5), *args)
    other = sample_excluding(np.random.default_rng(6), *args)

    np.testing.assert_array_equal(same, again)
    assert (same != other).any()


def test_sampler_pads_rows_without_enough_allowed_items():
    width = 10
    pool = np.arange(1, 6)
    forbidden = np.array([1 * width + 1, 1 * width + 2, 1 * width + 3])  # row 1 keeps 4 and 5

    sampled = sample_excluding(
        np.random.default_rng(0), np.array([1, 2]), pool, forbidden, 4, width, replace=False
    )

    assert sorted(sampled[0].tolist()) == [-1, -1, 4, 5]
    assert len(set(sampled[1].tolist())) == 4 and np.isin(sampled[1], pool).all()
