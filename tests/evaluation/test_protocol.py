"""The evaluation protocol: split by time within the pool, tune/gate parts, shared negatives,
full-catalogue metrics, non-finite scores, the promotion rule (pure numpy, no app)."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.evaluation import protocol
from recommender.evaluation.metrics import positive_ranks, score_metrics
from recommender.evaluation.protocol import NonFiniteScoresError


def interactions(lists: dict[int, list[int]], pool: set[int], services: int = 200):
    statuses = ((s, s in pool) for s in range(1, services + 1))
    return protocol.build_interactions(lists.items(), statuses)


def by_user(data, held) -> dict[int, int]:
    users = data.users.ids[held.users - 1].tolist()
    return dict(zip(users, data.services.ids[held.positives - 1].tolist(), strict=True))


# --- non-finite scores -------------------------------------------------------------------------


def test_a_nan_model_scores_zero_not_a_perfect_hit_rate():
    negatives = np.full((4, 99), np.nan)
    positive = np.full(4, np.nan)

    metrics = score_metrics(positive, negatives, ks=(10,))

    assert metrics["hr@10"] == 0.0 and metrics["ndcg@10"] == 0.0
    assert positive_ranks(positive, negatives).tolist() == [99] * 4


def test_non_finite_negatives_never_outrank_and_a_non_finite_positive_ranks_last():
    positive = np.array([0.5, np.inf, 0.5])
    negatives = np.array([[np.nan, 0.9, -np.inf], [0.1, 0.2, 0.3], [np.inf, np.nan, 0.1]])

    assert positive_ranks(positive, negatives).tolist() == [1, 3, 0]


def test_a_scorer_with_nan_scores_fails_the_evaluation_with_the_reason():
    data = interactions({u: [u, u + 1, u + 2, u + 3] for u in range(1, 30)}, set(range(1, 201)))
    split = protocol.split(data, seed=0)

    def nan_scorer(users, items):
        return np.full(items.shape, np.nan)

    with pytest.raises(NonFiniteScoresError, match="NaN or infinite"):
        protocol.sampled_metrics(nan_scorer, split.test)


# --- split ---------------------------------------------------------------------------------------


def test_held_out_items_are_the_last_two_in_the_pool_and_the_rest_trains():
    # User 1's last access (50) is a deleted service: it trains, and 8 / 7 are held out.
    pool = set(range(1, 41))
    data = interactions({1: [5, 6, 7, 8, 50], 2: [9, 10], 3: [11, 12, 13], 4: [14, 60, 61]}, pool)

    split = protocol.split(data, seed=0)

    assert by_user(data, split.test) == {1: 8, 3: 13}  # 2: too few; 4: one pool positive
    assert by_user(data, split.valid) == {1: 7, 3: 12}
    ids = data.services.ids[split.train_services - 1]
    users = data.users.ids[split.train_users - 1]
    assert sorted(zip(users.tolist(), ids.tolist(), strict=True)) == [
        (1, 5), (1, 6), (1, 50), (2, 9), (2, 10), (3, 11), (4, 14), (4, 60), (4, 61),
    ]  # fmt: skip
    assert split.train_recency[users == 1].tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_negatives_come_from_the_pool_never_accessed_and_are_the_same_for_a_seed():
    pool = {s for s in range(1, 301) if s % 10}
    lists = {u: list(range(u, u + 12)) for u in range(1, 41)}
    data = interactions(lists, pool, services=300)

    split, again = protocol.split(data, seed=4), protocol.split(data, seed=4)
    other = protocol.split(data, seed=5)

    negatives = data.services.ids[split.test.negatives - 1]
    for user_row, row in zip(split.test.users, negatives, strict=True):
        user_id = int(data.users.ids[user_row - 1])
        assert not set(row.tolist()) & set(lists[user_id])
        assert set(row.tolist()) <= pool and len(set(row.tolist())) == 99
    assert set(by_user(data, split.test).values()) <= pool  # positives: the same pool
    np.testing.assert_array_equal(split.test.negatives, again.test.negatives)
    assert split.key == again.key and split.key != other.key
    assert (split.test.negatives != other.test.negatives).any()


def test_tune_and_gate_partition_the_validation_users():
    data = interactions({u: [u, u + 1, u + 2] for u in range(1, 101)}, set(range(1, 201)))

    split = protocol.split(data, seed=3)

    tune, gate = set(split.tune.users.tolist()), set(split.gate.users.tolist())
    assert not tune & gate
    assert tune | gate == set(split.valid.users.tolist())
    assert 30 < len(gate) < 70  # about GATE_SHARE of 100


# --- full catalogue ------------------------------------------------------------------------------


def test_full_catalogue_ranks_among_every_unseen_pool_service():
    # 10 pool services; each user accessed 3; the held-out one is ranked against the 7 others
    # (its own two other positives are not candidates).
    lists = {u: [u, u + 1, u + 2] for u in range(1, 5)}
    data = interactions(lists, set(range(1, 11)), services=10)
    split = protocol.split(data, seed=0)

    def by_id(users, items):  # a higher id scores higher
        return data.services.ids[items - 1].astype(float)

    metrics = protocol.full_metrics(by_id, data, split, split.test, ks=(1, 3))

    # Test items are u + 2 (3, 4, 5, 6): unseen pool services above them: 7, 6, 5, 4 of them.
    ranks = np.array([10 - 3, 10 - 4, 10 - 5, 10 - 6])
    assert metrics["users"] == 4
    assert metrics["hr@3"] == 0.0 and metrics["recall@3"] == 0.0
    assert metrics["mrr"] == pytest.approx(np.mean(1 / (ranks + 1)))
    # Top 10 of each user: every unseen service plus the held-out one: all 10 are shown.
    assert metrics["coverage@10"] == 1.0
    reverse = protocol.full_metrics(
        lambda users, items: -by_id(users, items), data, split, split.test, ks=(1,)
    )
    # Reversed: unseen services below the test item (3, 4, 5, 6): 0, 1, 2, 3 of them.
    assert reverse["mrr"] == pytest.approx(np.mean(1 / np.arange(1, 5)))
    assert reverse["hr@1"] == reverse["ndcg@1"] == reverse["recall@1"] == 0.25


def test_held_out_metrics_report_sampled_and_full_catalogue_figures():
    data = interactions({u: [u, u + 1, u + 2] for u in range(1, 31)}, set(range(1, 201)))
    split = protocol.split(data, seed=1)

    result = protocol.held_out_metrics(
        lambda users, items: -items.astype(float), data, split, split.test, full_users=5
    )

    assert result["users"] == 30 and result["full"]["users"] == 5
    assert {"hr@10", "ndcg@10", "recall@10", "mrr", "coverage@10"} <= set(result["full"])


# --- promotion -----------------------------------------------------------------------------------


def test_promotion_needs_enough_gate_users_and_the_margin():
    ours, baseline = {"users": 80, "ndcg@10": 0.31}, {"users": 80, "ndcg@10": 0.30}

    assert protocol.promotion_problem(ours, baseline, "ndcg@10", 0.005, 50, "EASE") is None
    assert "margin" in protocol.promotion_problem(ours, baseline, "ndcg@10", 0.02, 50, "EASE")
    too_few = protocol.promotion_problem(ours, baseline, "ndcg@10", 0.0, 81, "EASE")
    assert "80 gate user(s)" in too_few
    nan = protocol.promotion_problem(
        {"users": 80, "ndcg@10": float("nan")}, baseline, "ndcg@10", 0.0, 1, "EASE"
    )
    assert nan is not None


def test_capped_parts_keep_at_most_the_cap_of_their_own_users():
    data = interactions({u: [u, u + 1, u + 2] for u in range(1, 101)}, set(range(1, 201)))
    split = protocol.split(data, seed=3)

    capped = protocol.capped(split, 20, seed=3)

    for part in ("tune", "gate", "test"):
        users = getattr(capped, part).users
        assert len(users) == 20 and set(users) <= set(getattr(split, part).users)
    assert capped.key == split.key and protocol.capped(split, 0, seed=3) is split
    np.testing.assert_array_equal(capped.test.users, protocol.capped(split, 20, 3).test.users)
