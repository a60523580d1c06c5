"""The Hybrid's co-visit part (engines/hybrid/covisits.py): pair counts, neighbours and scores
against sums written out by hand."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from recommender.engines.base.scoring import IdLists
from recommender.engines.hybrid import covisits
from recommender.engines.hybrid.covisits import (
    HISTORY_DECAY,
    PAIR_DECAY,
    CoVisits,
    CoVisitSetting,
    neighbours,
    pair_counts,
)
from recommender.id_index import IdIndex

# Two users' lists (service rows, oldest first), grouped by user as the split gives them.
USERS = np.array([1, 1, 1, 1, 2, 2, 2])
SERVICES = np.array([1, 2, 3, 4, 3, 1, 5])
WIDTH = 6  # rows 0 (unknown) to 5


def test_pairs_count_by_their_distance_within_one_users_list_only():
    counts = pair_counts(USERS, SERVICES, WIDTH, window=2).toarray()

    expected = np.zeros((WIDTH, WIDTH))
    for a, b, distance in [
        (1, 2, 1), (2, 3, 1), (3, 4, 1), (1, 3, 2), (2, 4, 2),  # user 1
        (3, 1, 1), (1, 5, 1), (3, 5, 2),  # user 2; 4 and 3 are in different users' lists
    ]:  # fmt: skip
        expected[a, b] += PAIR_DECAY ** (distance - 1)
        expected[b, a] += PAIR_DECAY ** (distance - 1)
    np.testing.assert_allclose(counts, expected)
    # 1 and 4 are three places apart: only a wider window counts them.
    assert pair_counts(USERS, SERVICES, WIDTH, window=3)[1, 4] == PAIR_DECAY**2


def test_neighbours_are_scaled_by_the_candidates_popularity_and_cut_to_the_largest():
    counts = pair_counts(USERS, SERVICES, WIDTH, window=2)
    positives = np.array([0.0, 2, 1, 2, 1, 1])

    scaled = neighbours(counts, positives, exponent=0.5).toarray()
    np.testing.assert_allclose(
        scaled, counts.toarray() / np.sqrt(1 + positives)[None, :], rtol=1e-6
    )

    kept = neighbours(counts, positives, exponent=0.5, keep=2).toarray()
    for row in range(WIDTH):
        nonzero = np.flatnonzero(scaled[row])
        largest = nonzero[np.lexsort((nonzero, -scaled[row, nonzero]))][:2]
        np.testing.assert_array_equal(np.flatnonzero(kept[row]), np.sort(largest))
    assert (kept[kept > 0] == scaled[kept > 0]).all()


def part(window: int = 3) -> CoVisits:
    rng = np.random.default_rng(0)
    weights = np.zeros((5, 5), dtype=np.float32)
    weights[1:, 1:] = rng.random((4, 4))
    return CoVisits(
        IdIndex(np.array([10, 20, 30, 40])), sparse.csr_matrix(weights), CoVisitSetting(window, 0.5)
    )


def test_scores_sum_the_neighbours_of_the_last_services_weighted_by_recency():
    covisited = part(window=3)
    weights = covisited.weights.toarray()
    candidates = np.array([[10, 20, 30, 40, 99]])
    columns = [1, 2, 3, 4, 0]  # 99 is unknown: row 0, no weight
    # Oldest first: 40 (four entries after it: outside the window of 3), 10, 20, 10 again (its
    # latest place counts), then an unknown id (weighs nothing but is an entry).
    history = IdLists.one(np.array([40, 10, 20, 10, 77]))
    expected = HISTORY_DECAY**1 * weights[1, columns] + HISTORY_DECAY**2 * weights[2, columns]

    served = covisited.batch_scores(np.zeros(1), history, candidates)
    np.testing.assert_allclose(served[0], expected, rtol=1e-6)
    # Several users at once (the evaluator's path) give each the same scores as alone.
    other = np.array([30])
    both = IdLists(np.array([0, 5, 6]), np.concatenate([history.ids, other]))
    batch = covisited.batch_scores(np.zeros(2), both, np.repeat(candidates, 2, axis=0))
    np.testing.assert_allclose(batch[0], served[0], rtol=1e-6)
    np.testing.assert_allclose(batch[1], weights[3, columns], rtol=1e-6)


def test_a_stored_part_scores_as_the_fitted_one():
    services = IdIndex(np.array([10, 20, 30, 40, 50]))
    setting = CoVisitSetting(2, 0.25)
    positives = np.bincount(SERVICES, minlength=WIDTH).astype(np.float64)
    (fitted,) = covisits.fit(services, USERS, SERVICES, positives, (setting,))
    stored = {key: value.copy() for key, value in covisits.arrays(fitted).items()}

    rebuilt = covisits.from_arrays(services, stored, setting)

    history = IdLists.one(np.array([20, 30]))
    candidates = services.ids[None, :]
    np.testing.assert_array_equal(
        rebuilt.batch_scores(np.zeros(1), history, candidates),
        fitted.batch_scores(np.zeros(1), history, candidates),
    )
    assert fitted.batch_scores(np.zeros(1), history, candidates).any()
