"""The serving policy's draws match the probabilities it records and `marginals` reports."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from scipy.stats import chisquare

from recommender.evaluation.exploration import Exploration, Slate, choose, marginals

DRAWS = 20_000
SCORES = np.array([0.3, 1.2, -0.5, 0.9, 0.0, 1.5, 0.4, -1.0])
K = 3
EPSILON = Exploration("epsilon", epsilon=0.3)
# A pool of 5 among 8 candidates, so that the never-shown rest is checked too.
PLACKETT_LUCE = Exploration("plackett_luce", temperature=1.0, pool=5)
GREEDY = [5, 1, 3]  # SCORES' top 3, best first


def _assert_fits(observed: np.ndarray, probabilities: np.ndarray) -> None:
    """Chi-square goodness of fit of counts to probabilities, cells with an expected count
    below 5 merged into one (itself merged into the smallest other cell while still below 5);
    a cell of probability 0 must never be observed."""
    observed = np.asarray(observed, dtype=np.float64).ravel()
    expected = observed.sum() * np.asarray(probabilities, dtype=np.float64).ravel()
    assert observed[expected == 0].sum() == 0
    small = expected < 5
    kept_observed, kept_expected = observed[~small], expected[~small]
    if small.any():
        kept_observed = np.append(kept_observed, observed[small].sum())
        kept_expected = np.append(kept_expected, expected[small].sum())
        if kept_expected[-1] < 5:
            smallest = np.argmin(kept_expected[:-1])
            kept_observed[smallest] += kept_observed[-1]
            kept_expected[smallest] += kept_expected[-1]
            kept_observed, kept_expected = kept_observed[:-1], kept_expected[:-1]
    assert len(kept_observed) >= 2
    kept_expected *= kept_observed.sum() / kept_expected.sum()
    assert chisquare(kept_observed, kept_expected).pvalue > 1e-3


def _draws(exploration: Exploration) -> list[Slate]:
    rng = np.random.default_rng(12345)
    return [choose(SCORES, K, exploration, rng) for _ in range(DRAWS)]


@pytest.fixture(scope="module", params=[EPSILON, PLACKETT_LUCE], ids=["epsilon", "pl"])
def drawn(request: pytest.FixtureRequest) -> tuple[Exploration, list[Slate]]:
    return request.param, _draws(request.param)


def test_position_frequencies_match_marginals(drawn: tuple[Exploration, list[Slate]]) -> None:
    exploration, slates = drawn
    expected = marginals(SCORES, K, exploration)
    counts = np.zeros_like(expected)
    for slate in slates:
        counts[slate.positions, np.arange(K)] += 1
    for j in range(K):
        _assert_fits(counts[:, j], expected[:, j])


def test_recorded_propensities_are_the_marginals(drawn: tuple[Exploration, list[Slate]]) -> None:
    exploration, slates = drawn
    expected = marginals(SCORES, K, exploration)
    for slate in slates[:2000]:
        np.testing.assert_allclose(slate.propensities, expected[slate.positions, np.arange(K)])


def test_slate_frequencies_match_slate_propensities(
    drawn: tuple[Exploration, list[Slate]],
) -> None:
    _, slates = drawn
    counts = Counter(tuple(slate.positions.tolist()) for slate in slates)
    recorded: dict[tuple[int, ...], float] = {}
    for slate in slates:
        key = tuple(slate.positions.tolist())
        assert recorded.setdefault(key, slate.slate_propensity) == pytest.approx(
            slate.slate_propensity
        )
    keys = list(counts)
    unseen = 1.0 - sum(recorded.values())
    assert unseen > -1e-9
    _assert_fits(
        [counts[key] for key in keys] + [0], [recorded[key] for key in keys] + [max(unseen, 0.0)]
    )


def test_explored_flags_slates_other_than_greedy(drawn: tuple[Exploration, list[Slate]]) -> None:
    _, slates = drawn
    for slate in slates[:2000]:
        assert slate.explored == (slate.positions.tolist() != GREEDY)
    assert any(slate.explored for slate in slates)


def test_plackett_luce_never_shows_outside_the_pool() -> None:
    outside = [2, 4, 7]  # the 3 lowest of the 8 scores
    assert not marginals(SCORES, K, PLACKETT_LUCE)[outside].any()
    rng = np.random.default_rng(0)
    shown = {c for _ in range(500) for c in choose(SCORES, K, PLACKETT_LUCE, rng).positions}
    assert shown.isdisjoint(outside)


def test_off_shows_greedy_with_propensity_one_and_stable_ties() -> None:
    scores = np.array([0.5, 0.9, 0.9, 0.1, 0.7])
    slate = choose(scores, 3, Exploration("off"), np.random.default_rng(0))
    assert slate.positions.tolist() == [1, 2, 4]  # the tie 1/2 goes to the lower index first
    assert slate.propensities.tolist() == [1.0, 1.0, 1.0]
    assert slate.slate_propensity == 1.0
    assert not slate.explored
    expected = np.zeros((5, 3))
    expected[[1, 2, 4], [0, 1, 2]] = 1.0
    np.testing.assert_array_equal(marginals(scores, 3, Exploration("off")), expected)


def test_epsilon_probabilities_by_hand() -> None:
    # n = 4, K = 2, epsilon = 0.2: the uniform branch shows each of the 4 * 3 = 12 ordered
    # slates with probability 1/12 and each candidate at a position with probability 1/4.
    scores = np.array([0.1, 0.4, 0.3, 0.2])  # greedy: [1, 2]
    exploration = Exploration("epsilon", epsilon=0.2)
    seen: dict[bool, Slate] = {}
    rng = np.random.default_rng(3)
    while len(seen) < 2:
        slate = choose(scores, 2, exploration, rng)
        seen.setdefault(slate.explored, slate)
    assert seen[False].positions.tolist() == [1, 2]
    assert seen[False].slate_propensity == pytest.approx(0.8 + 0.2 / 12)
    np.testing.assert_allclose(seen[False].propensities, [0.8 + 0.2 / 4] * 2)
    assert seen[True].slate_propensity == pytest.approx(0.2 / 12)
    on_greedy = seen[True].positions == [1, 2]
    np.testing.assert_allclose(seen[True].propensities, np.where(on_greedy, 0.85, 0.05))


def test_plackett_luce_by_hand() -> None:
    # Weights 1, 2, 3 (scores 2 log w at temperature 2), total 6, K = 2.
    # First position: 1/6, 2/6, 3/6.
    # Second position, summing over the first pick p: P(p) * w_c / (6 - w_p):
    #   c=0: (2/6)(1/4) + (3/6)(1/3) = 1/12 + 1/6 = 1/4
    #   c=1: (1/6)(2/5) + (3/6)(2/3) = 1/15 + 1/3 = 2/5
    #   c=2: (1/6)(3/5) + (2/6)(3/4) = 1/10 + 1/4 = 7/20
    # Ordered slates: (2,1) 3/6*2/3 = 1/3, (2,0) 3/6*1/3 = 1/6, (1,2) 2/6*3/4 = 1/4,
    #   (1,0) 2/6*1/4 = 1/12, (0,2) 1/6*3/5 = 1/10, (0,1) 1/6*2/5 = 1/15 (they sum to 1).
    scores = 2 * np.log([1.0, 2.0, 3.0])
    exploration = Exploration("plackett_luce", temperature=2.0, pool=3)
    position = np.array([[1 / 6, 1 / 4], [2 / 6, 2 / 5], [3 / 6, 7 / 20]])
    np.testing.assert_allclose(marginals(scores, 2, exploration), position)
    slate_probability = {
        (2, 1): 1 / 3,
        (2, 0): 1 / 6,
        (1, 2): 1 / 4,
        (1, 0): 1 / 12,
        (0, 2): 1 / 10,
        (0, 1): 1 / 15,
    }
    rng = np.random.default_rng(0)
    seen: set[tuple[int, ...]] = set()
    while len(seen) < len(slate_probability):
        slate = choose(scores, 2, exploration, rng)
        key = tuple(slate.positions.tolist())
        seen.add(key)
        assert slate.slate_propensity == pytest.approx(slate_probability[key])
        np.testing.assert_allclose(slate.propensities, position[list(key), [0, 1]])
        assert slate.explored == (key != (2, 1))


@pytest.mark.parametrize(
    "exploration", [Exploration("off"), EPSILON, PLACKETT_LUCE], ids=["off", "epsilon", "pl"]
)
def test_same_seed_same_slates(exploration: Exploration) -> None:
    def sequence(seed: int) -> list[list[int]]:
        rng = np.random.default_rng(seed)
        return [choose(SCORES, K, exploration, rng).positions.tolist() for _ in range(50)]

    assert sequence(7) == sequence(7)
    if exploration.enabled:
        assert sequence(7) != sequence(8)


@pytest.mark.parametrize(
    "exploration", [Exploration("off"), EPSILON, PLACKETT_LUCE], ids=["off", "epsilon", "pl"]
)
def test_more_positions_than_candidates_shows_them_all(exploration: Exploration) -> None:
    scores = np.array([0.2, 0.8])
    rng = np.random.default_rng(0)
    for _ in range(20):
        slate = choose(scores, 3, exploration, rng)
        assert sorted(slate.positions.tolist()) == [0, 1]
        assert len(slate.propensities) == 2
    table = marginals(scores, 3, exploration)
    assert table.shape == (2, 2)
    np.testing.assert_allclose(table.sum(axis=0), 1.0)
    np.testing.assert_allclose(table.sum(axis=1), 1.0)


def test_given_greedy_is_used() -> None:
    greedy = np.array([0, 2, 4])  # not the score order: the engine knows better
    rng = np.random.default_rng(0)
    off = choose(SCORES, K, Exploration("off"), rng, greedy=greedy)
    assert off.positions.tolist() == [0, 2, 4]
    table = marginals(SCORES, K, EPSILON, greedy=greedy)
    assert table[[0, 2, 4], [0, 1, 2]] == pytest.approx([0.7 + 0.3 / 8] * 3)
    slate = choose(SCORES, K, EPSILON, rng, greedy=greedy)
    np.testing.assert_allclose(slate.propensities, table[slate.positions, np.arange(K)])


@pytest.mark.parametrize("temperature", [1e-4, 0.05, 1.0, 50.0])
def test_plackett_luce_marginals_are_probabilities_at_any_temperature(
    temperature: float,
) -> None:
    scores = np.random.default_rng(1).normal(size=300)
    exploration = Exploration("plackett_luce", temperature=temperature, pool=20)
    table = marginals(scores, 3, exploration)
    np.testing.assert_allclose(table.sum(axis=0), 1.0)
    assert table.min() >= 0.0
    assert table.sum(axis=1).max() <= 1.0 + 1e-12
    rng = np.random.default_rng(2)
    for slate in (choose(scores, 3, exploration, rng) for _ in range(50)):
        assert slate.slate_propensity is not None and 0.0 < slate.slate_propensity <= 1.0
        assert np.all(slate.propensities > 0.0)
        # What a slate records is the table's cells, however extreme the weights.
        np.testing.assert_allclose(
            slate.propensities, table[slate.positions, np.arange(3)], rtol=1e-9
        )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"method": "softmax"},
        {"method": "epsilon", "epsilon": 1.5},
        {"method": "epsilon", "epsilon": -0.1},
        {"method": "plackett_luce", "temperature": 0.0},
        {"method": "plackett_luce", "pool": 0},
    ],
)
def test_invalid_exploration(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        Exploration(**kwargs)


def test_enabled() -> None:
    assert not Exploration("off").enabled
    assert not Exploration("epsilon", epsilon=0.0).enabled
    assert Exploration("epsilon", epsilon=0.1).enabled
    assert Exploration("plackett_luce").enabled


@pytest.mark.parametrize(
    ("scores", "k", "greedy"),
    [
        (np.array([]), 3, None),
        (np.array([0.1, np.nan, 0.3]), 2, None),
        (np.array([0.1, 0.2, 0.3]), 0, None),
        (np.array([0.1, 0.2, 0.3]), 2, np.array([0, 0])),
        (np.array([0.1, 0.2, 0.3]), 2, np.array([0, 3])),
        (np.array([0.1, 0.2, 0.3]), 2, np.array([0])),
    ],
)
def test_invalid_arguments(scores: np.ndarray, k: int, greedy: np.ndarray | None) -> None:
    with pytest.raises(ValueError):
        choose(scores, k, EPSILON, np.random.default_rng(0), greedy=greedy)


def test_too_large_prefix_enumeration_is_refused() -> None:
    scores = np.arange(1000, dtype=np.float64)
    with pytest.raises(ValueError, match="smaller pool"):
        marginals(scores, 4, Exploration("plackett_luce", pool=500))
