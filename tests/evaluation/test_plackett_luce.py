"""The compiled Plackett-Luce sums against a plain enumeration of every ordered slate."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from recommender.evaluation import plackett_luce


def _enumerated(weights: list[float], k: int) -> tuple[np.ndarray, dict[tuple[int, ...], float]]:
    """[pool, K] marginals and P(each ordered slate) by listing every slate, each position's
    unshown weight summed exactly (math.fsum) rather than subtracted."""
    table = np.zeros((len(weights), k))
    slates = {}
    for slate in itertools.permutations(range(len(weights)), k):
        probability = 1.0
        for j, item in enumerate(slate):
            unshown = math.fsum(w for c, w in enumerate(weights) if c not in slate[:j])
            probability *= weights[item] / unshown
        slates[slate] = probability
        table[list(slate), np.arange(k)] += probability
    return table, slates


# Scores best first. The second and third make one weight dwarf the rest (at temperature 0.01 the
# others are below exp(-50)), where taking the best's weight from the total would cancel.
CASES = [
    (np.array([2.0, 1.5, 1.4, 0.3, 0.0, -0.7]), 1.0, 3),
    (np.array([1.0, 0.5, 0.45, 0.2, 0.1]), 0.01, 3),
    (np.array([1.0, 0.9, 0.3, 0.25, 0.2, 0.0]), 0.01, 4),
    (np.array([0.4, 0.4, 0.1, -0.2]), 0.5, 2),
    (np.array([3.0, 1.0, 0.0]), 2.0, 1),
    (np.array([0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0]), 1.0, 3),
]


@pytest.mark.parametrize(("scores", "temperature", "k"), CASES)
def test_marginals_are_the_enumerated_ones(scores: np.ndarray, temperature: float, k: int) -> None:
    weights = plackett_luce.pool_weights(scores, temperature)
    assert weights[0] == 1.0
    expected, _ = _enumerated(weights.tolist(), k)
    np.testing.assert_allclose(plackett_luce.marginals(weights, k), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize(("scores", "temperature", "k"), CASES)
def test_draws_record_the_enumerated_probabilities(
    scores: np.ndarray, temperature: float, k: int
) -> None:
    weights = plackett_luce.pool_weights(scores, temperature)
    table, slates = _enumerated(weights.tolist(), k)
    rng = np.random.default_rng(3)
    for _ in range(200):
        noise = rng.gumbel(size=len(scores))
        positions, propensities, slate_propensity = plackett_luce.draw(
            scores, temperature, noise, k
        )
        shown = positions.tolist()
        # Gumbel-top-k: the K largest log-weights plus noise, in order.
        keys = np.log(weights) + noise
        assert shown == np.argsort(-keys, kind="stable")[:k].tolist()
        np.testing.assert_allclose(propensities, table[shown, np.arange(k)], rtol=1e-12, atol=0)
        assert slate_propensity == pytest.approx(slates[tuple(shown)], rel=1e-12)


def test_tiny_weights_keep_their_share() -> None:
    # At temperature 1e-3 the second score's weight is exp(-100): position 1 is almost surely the
    # best, and position 2 almost surely the second, each to within float precision; the third
    # of five still gets exp(-100) / (1 + exp(-100)) of position 1's remainder.
    scores = np.array([0.3, 0.2, 0.1, 0.0, -0.1])
    weights = plackett_luce.pool_weights(scores, 1e-3)
    table = plackett_luce.marginals(weights, 2)
    expected, _ = _enumerated(weights.tolist(), 2)
    np.testing.assert_allclose(table, expected, rtol=1e-12, atol=0)
    assert table[0, 0] == 1.0 and table[1, 1] == pytest.approx(1.0)
    assert table[2, 1] == pytest.approx(math.exp(-100), rel=1e-9)
    np.testing.assert_allclose(table.sum(axis=0), 1.0)
