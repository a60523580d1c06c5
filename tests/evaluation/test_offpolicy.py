"""Off-policy estimators: hand-computed values, unbiasedness on a simulated bandit, validation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit

from recommender.evaluation.exploration import Exploration, choose, marginals
from recommender.evaluation.offpolicy import (
    Estimate,
    LoggedSlates,
    dr,
    fit_position_reward_model,
    ips,
    snips,
    target_expected_reward,
    unsupported_mass,
)

nan = np.nan


def _hand_logged() -> LoggedSlates:
    # Three slates of K = 2; the third has one position only.
    return LoggedSlates(
        rewards=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, nan]]),
        logging_propensities=np.array([[0.5, 0.25], [0.8, 0.5], [0.2, nan]]),
        target_propensities=np.array([[1.0, 0.0], [1.0, 1.0], [0.5, nan]]),
        reward_model_logged=np.array([[0.6, 0.2], [0.3, 0.5], [0.4, nan]]),
        reward_model_target=np.array([[0.7, 0.3], [0.5, 0.5], [0.4, nan]]),
    )


# Weights w = target / logging: [[2, 0], [1.25, 2], [2.5, -]].
def test_ips_by_hand() -> None:
    # w * r = [[2, 0], [0, 2], [2.5, -]]: per slate 2, 2, 2.5; mean 6.5 / 3.
    assert ips(_hand_logged()).value == pytest.approx(6.5 / 3)


def test_snips_by_hand() -> None:
    # Position 1: sum w r = 2 + 0 + 2.5 = 4.5, sum w = 2 + 1.25 + 2.5 = 5.75 -> 18/23.
    # Position 2: sum w r = 0 + 2 = 2, sum w = 0 + 2 = 2 -> 1.
    assert snips(_hand_logged()).value == pytest.approx(18 / 23 + 1)


def test_dr_by_hand() -> None:
    # Slate 1: (0.7 + 2 (1 - 0.6)) + (0.3 + 0 (0 - 0.2)) = 1.5 + 0.3 = 1.8
    # Slate 2: (0.5 + 1.25 (0 - 0.3)) + (0.5 + 2 (1 - 0.5)) = 0.125 + 1.5 = 1.625
    # Slate 3: 0.4 + 2.5 (1 - 0.4) = 1.9
    # Mean: 5.325 / 3 = 1.775.
    assert dr(_hand_logged()).value == pytest.approx(1.775)


def test_estimate_as_dict_holds_plain_numbers() -> None:
    estimate = ips(_hand_logged(), resamples=200)
    as_dict = estimate.as_dict()
    assert as_dict == {"value": estimate.value, "ci": [estimate.ci_low, estimate.ci_high], "n": 3}
    assert all(type(v) is float for v in [as_dict["value"], *as_dict["ci"]])
    assert estimate.ci_low <= estimate.ci_high


def test_snips_position_without_weight_contributes_nothing() -> None:
    logged = LoggedSlates(
        rewards=np.array([[1.0, 1.0], [0.0, 1.0]]),
        logging_propensities=np.full((2, 2), 0.5),
        target_propensities=np.array([[1.0, 0.0], [0.0, 0.0]]),
    )
    # Position 1: 2 * 1 / 2 = 1; position 2 has no weight at all.
    assert snips(logged).value == pytest.approx(1.0)


def test_logging_policy_on_its_own_data_gives_the_mean_observed_reward() -> None:
    rng = np.random.default_rng(4)
    rewards = rng.random((500, 3))
    rewards[::7, 2] = nan
    propensities = rng.uniform(0.05, 1.0, size=rewards.shape)
    logged = LoggedSlates(rewards, propensities, propensities)
    expected = np.nansum(rewards, axis=1).mean()
    assert ips(logged).value == pytest.approx(expected)
    assert snips(logged).value == pytest.approx(np.nanmean(rewards, axis=0).sum())


def test_unsupported_positions_are_counted_not_divided() -> None:
    logged = LoggedSlates(
        rewards=np.array([[1.0, 0.0], [1.0, 1.0]]),
        logging_propensities=np.array([[0.0, 0.5], [0.5, 0.5]]),
        target_propensities=np.array([[1.0, 1.0], [1.0, 0.0]]),
        reward_model_logged=np.full((2, 2), 0.5),
        reward_model_target=np.full((2, 2), 0.5),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        estimates = [ips(logged), snips(logged), dr(logged)]
    for estimate in estimates:
        assert estimate.unsupported == 1
        assert np.isfinite(estimate.value)
    # The unsupported position gets weight 0: slates give 0 + 2 * 0 and 2 * 1 + 0.
    assert estimates[0].value == pytest.approx(1.0)


def test_unsupported_mass_of_a_target_outside_the_logging_pool() -> None:
    scores = np.array([0.9, 0.5, 0.4, 0.1])
    logging = marginals(scores, 2, Exploration("plackett_luce", pool=3))
    target = np.zeros((4, 2))
    target[[3, 0], [0, 1]] = 1.0  # item 3 first: outside the logging pool
    assert unsupported_mass(target, logging) == pytest.approx(1.0)
    assert unsupported_mass(logging, logging) == 0.0


def test_bootstrap_is_reproducible_by_seed() -> None:
    rng = np.random.default_rng(5)
    logged = LoggedSlates(
        rewards=rng.random((200, 2)),
        logging_propensities=rng.uniform(0.1, 1.0, (200, 2)),
        target_propensities=rng.random((200, 2)),
        reward_model_logged=rng.random((200, 2)),
        reward_model_target=rng.random((200, 2)),
    )
    for estimator in (ips, snips, dr):
        assert estimator(logged, rng=3) == estimator(logged, rng=3)
        first = estimator(logged, rng=np.random.default_rng(3))
        assert first == estimator(logged, rng=np.random.default_rng(3))
        assert estimator(logged, rng=3) != estimator(logged, rng=4)


# --- A simulated bandit: 6 items, K = 2, P(click) = sigmoid(item effect + position effect). ---
ITEM_EFFECT = np.array([-0.5, 0.3, -1.0, 0.8, -0.2, 0.0])
POSITION_EFFECT = np.array([0.0, -0.7])
CLICK = expit(ITEM_EFFECT[:, None] + POSITION_EFFECT[None, :])  # [item, position]
LOGGING_SCORES = np.array([1.0, 0.2, 0.5, -0.3, 0.8, 0.0])  # greedy: items 0 then 4
TARGET = np.array([3, 1])  # a deterministic target slate
TRUE_VALUE = CLICK[3, 0] + CLICK[1, 1]
SLATES = 20_000


def _simulate(logging_policy: Exploration) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logged slates [N, 2], their rewards [N, 2] and the logging marginals [6, 2]."""
    rng = np.random.default_rng(2024)
    shown = np.array(
        [choose(LOGGING_SCORES, 2, logging_policy, rng).positions for _ in range(SLATES)]
    )
    rewards = (rng.random(shown.shape) < CLICK[shown, [0, 1]]).astype(np.float64)
    return shown, rewards, marginals(LOGGING_SCORES, 2, logging_policy)


def _standard_error(estimate: Estimate) -> float:
    return (estimate.ci_high - estimate.ci_low) / (2 * 1.96)


@pytest.fixture(
    scope="module",
    params=[Exploration("epsilon", epsilon=0.5), Exploration("plackett_luce", temperature=1.0)],
    ids=["epsilon", "pl"],
)
def simulated(request: pytest.FixtureRequest) -> tuple[np.ndarray, LoggedSlates]:
    shown, rewards, logging = _simulate(request.param)
    target = np.zeros((6, 2))
    target[TARGET, [0, 1]] = 1.0
    positions = [0, 1]
    logged = LoggedSlates(
        rewards=rewards,
        logging_propensities=logging[shown, positions],
        target_propensities=target[shown, positions],
        reward_model_logged=CLICK[shown, positions],
        reward_model_target=np.tile(target_expected_reward(target, CLICK), (SLATES, 1)),
    )
    return shown, logged


@pytest.mark.parametrize("estimator", [ips, snips, dr])
def test_estimators_recover_the_true_value(simulated, estimator) -> None:
    _, logged = simulated
    estimate = estimator(logged)
    assert estimate.n == SLATES
    assert estimate.unsupported == 0
    assert abs(estimate.value - TRUE_VALUE) <= 3 * _standard_error(estimate)


def test_dr_with_a_correct_model_is_narrower_than_ips(simulated) -> None:
    _, logged = simulated
    ips_estimate, dr_estimate = ips(logged), dr(logged)
    assert dr_estimate.ci_high - dr_estimate.ci_low < ips_estimate.ci_high - ips_estimate.ci_low


def test_dr_with_a_fitted_reward_model(simulated) -> None:
    shown, logged = simulated
    one_hot = np.eye(6)
    model = fit_position_reward_model(one_hot[shown], logged.rewards, l2=1.0)
    every_item = model.predict(np.broadcast_to(one_hot[:, None, :], (6, 2, 6)))  # [item, position]
    np.testing.assert_allclose(every_item, CLICK, atol=0.03)
    target = np.zeros((6, 2))
    target[TARGET, [0, 1]] = 1.0
    fitted = LoggedSlates(
        rewards=logged.rewards,
        logging_propensities=logged.logging_propensities,
        target_propensities=logged.target_propensities,
        reward_model_logged=every_item[shown, [0, 1]],
        reward_model_target=np.tile(target_expected_reward(target, every_item), (SLATES, 1)),
    )
    estimate = dr(fitted)
    assert abs(estimate.value - TRUE_VALUE) <= 3 * _standard_error(estimate)


def test_reward_model_skips_missing_positions_and_stays_in_unit_interval() -> None:
    features = np.array([[[1.0], [0.0]], [[0.0], [1.0]], [[1.0], [5.0]]])
    rewards = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, nan]])
    model = fit_position_reward_model(features, rewards, l2=0.1)
    predicted = model.predict(features)
    assert predicted.shape == (3, 2)
    assert np.all((predicted > 0) & (predicted < 1))
    assert model.coef[0] > 0  # the feature goes with the rewards


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rewards": np.array([0.0, 1.0])}, "rewards must be a non-empty"),
        ({"rewards": np.array([[1.5, 0.0]])}, "rewards must lie in"),
        ({"logging_propensities": np.array([[0.5, 0.5, 0.5]])}, "logging_propensities must have"),
        ({"logging_propensities": np.array([[1.2, 0.5]])}, "logging_propensities"),
        ({"logging_propensities": np.array([[nan, 0.5]])}, "logging_propensities"),
        ({"target_propensities": np.array([[-0.1, 0.5]])}, "target_propensities"),
        ({"reward_model_logged": np.array([[0.5, 0.5]])}, "give both"),
        (
            {
                "reward_model_logged": np.array([[0.5, 0.5]]),
                "reward_model_target": np.array([[0.5, 2.0]]),
            },
            "reward_model_target",
        ),
    ],
)
def test_invalid_logged_slates(changes: dict, message: str) -> None:
    arrays = {
        "rewards": np.array([[1.0, 0.0]]),
        "logging_propensities": np.array([[0.5, 0.5]]),
        "target_propensities": np.array([[1.0, 0.0]]),
    }
    with pytest.raises(ValueError, match=message):
        LoggedSlates(**{**arrays, **changes})


def test_invalid_estimator_arguments() -> None:
    logged = LoggedSlates(np.array([[1.0, 0.0]]), np.full((1, 2), 0.5), np.ones((1, 2)))
    with pytest.raises(ValueError, match="dr needs"):
        dr(logged)
    with pytest.raises(ValueError, match="confidence"):
        ips(logged, confidence=1.0)
    with pytest.raises(ValueError, match="resamples"):
        snips(logged, resamples=0)
    with pytest.raises(ValueError, match="shape"):
        unsupported_mass(np.ones((3, 2)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="features"):
        fit_position_reward_model(np.ones((2, 3)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="no logged reward"):
        fit_position_reward_model(np.ones((1, 2, 1)), np.full((1, 2), nan))
