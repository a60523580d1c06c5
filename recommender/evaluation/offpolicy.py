"""Off-policy estimates of a target slate policy's reward, from slates served by another
(stochastic) logging policy with their propensities (see `exploration.py`).

The quantity estimated is the target policy's expected slate reward V = sum_j E_target[r_j], the
sum over the K positions of the expected reward at each. The three estimators work position by
position (the "independent" estimator of Li et al. 2018, OBP's IIPS): the item shown at position
j is reweighted by w_j = P_target(item at j) / P_logging(item at j), the per-position marginals.

What they assume:

- Independent positions: the reward at a position depends on the request, the item shown there
  and the position, not on the items at the other positions. Then E_target[r_j] =
  sum_c P_target(c at j) q(c, j), which the weighted logged rewards recover. Where positions
  interact (a strong first item taking clicks from the second, near-duplicates side by side),
  all three are biased; weighting whole slates would not be, but its weights are products over
  positions and explode.
- Support (overlap): every item the target can show at a position has a positive logging
  probability there. A shown item logged with propensity 0 cannot be reweighted: it is given
  weight 0 and counted in `Estimate.unsupported`. The commoner failure is invisible in the logs:
  the target's mass on items the logging policy never shows (e.g. outside a Plackett-Luce pool)
  is missing from IPS and SNIPS; `unsupported_mass` measures it per request from the two
  policies' marginals. DR still counts that mass through its reward model, and is right there
  only as far as the model is.
- Correct propensities: those of the policy that actually served each slate.

IPS is unbiased under these assumptions; its variance grows with the weights. SNIPS divides each
position's weighted reward by the weights' own sum instead of N: slightly biased for a finite log
(the bias vanishes as N grows) but far less variable when a few weights are large. DR adds a
reward model's prediction for the target and weights only the model's residuals: unbiased when
either the propensities or the model are right, and narrower than IPS when the model is good.

A position a logged slate does not have (fewer than K candidates) has reward nan and adds
nothing to any estimator: the target is assumed to show nothing there either. Intervals are
percentile bootstraps over whole slates, which treats slates as independent draws; slates of the
same user or session are not, and then the interval is too narrow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import expit

# Bootstrap resamples are drawn in chunks of at most this many slate draws, bounding memory for
# large logs while keeping each chunk a single vectorised step.
_BOOTSTRAP_CHUNK_DRAWS = 2_000_000
_NEWTON_TOLERANCE = 1e-10
_PER_POSITION_INPUTS = (
    "logging_propensities",
    "target_propensities",
    "reward_model_logged",
    "reward_model_target",
)


@dataclass(frozen=True)
class LoggedSlates:
    """Logged slates as [N, K] arrays, position by position (nan where a slate has no such
    position): rewards in [0, 1]; the logging and target policies' probabilities of showing the
    logged item at that position; optionally a reward model's prediction for the logged item
    (`reward_model_logged`) and its expected reward under the target policy, sum over candidates
    of P_target(c at j) * rhat(c, j) (`reward_model_target`; see `target_expected_reward`)."""

    rewards: np.ndarray
    logging_propensities: np.ndarray
    target_propensities: np.ndarray
    reward_model_logged: np.ndarray | None = None
    reward_model_target: np.ndarray | None = None

    def __post_init__(self) -> None:
        rewards = np.asarray(self.rewards, dtype=np.float64)
        if rewards.ndim != 2 or 0 in rewards.shape:
            raise ValueError(f"rewards must be a non-empty [N, K] array, got shape {rewards.shape}")
        object.__setattr__(self, "rewards", rewards)
        shown = ~np.isnan(rewards)
        _check_unit_interval("rewards", rewards[shown])
        if (self.reward_model_logged is None) != (self.reward_model_target is None):
            raise ValueError("give both reward_model_logged and reward_model_target, or neither")
        for name in _PER_POSITION_INPUTS:
            values = getattr(self, name)
            if values is None:
                continue
            values = np.asarray(values, dtype=np.float64)
            if values.shape != rewards.shape:
                raise ValueError(
                    f"{name} must have the rewards' shape {rewards.shape}, got {values.shape}"
                )
            _check_unit_interval(f"{name} (at shown positions)", values[shown])
            object.__setattr__(self, name, values)

    @property
    def shown(self) -> np.ndarray:
        """[N, K] mask of the positions the logged slates have."""
        return ~np.isnan(self.rewards)

    def weights(self) -> np.ndarray:
        """[N, K] importance weights P_target / P_logging of the logged items, 0 at missing
        positions and where the logging propensity is 0 (see `unsupported`)."""
        supported = self.shown & (self.logging_propensities > 0)
        return np.divide(
            self.target_propensities,
            self.logging_propensities,
            out=np.zeros_like(self.rewards),
            where=supported,
        )

    def unsupported(self) -> int:
        """Number of shown positions the target can show but the logging policy could not."""
        return int(
            np.count_nonzero(
                self.shown & (self.logging_propensities == 0) & (self.target_propensities > 0)
            )
        )

    def observed_rewards(self) -> np.ndarray:
        """Rewards with missing positions as 0."""
        return np.nan_to_num(self.rewards, nan=0.0)


@dataclass(frozen=True)
class Estimate:
    """An estimated expected slate reward with its bootstrap interval over `n` slates;
    `unsupported` counts logged positions IPS could not reweight (a sign of bias)."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    unsupported: int = 0

    def as_dict(self) -> dict[str, float | list[float] | int]:
        return {"value": self.value, "ci": [self.ci_low, self.ci_high], "n": self.n}


def ips(
    logged: LoggedSlates,
    confidence: float = 0.95,
    resamples: int = 1000,
    rng: int | np.random.Generator = 0,
) -> Estimate:
    """Inverse propensity scoring: mean over slates of sum_j w_j r_j."""
    per_slate = (logged.weights() * logged.observed_rewards()).sum(axis=1, keepdims=True)
    return _estimate(logged, per_slate, _single_mean, confidence, resamples, rng)


def snips(
    logged: LoggedSlates,
    confidence: float = 0.95,
    resamples: int = 1000,
    rng: int | np.random.Generator = 0,
) -> Estimate:
    """Self-normalised IPS, per position: sum_j (sum_i w_ij r_ij / sum_i w_ij). A position whose
    weights sum to 0 (no logged slate showed there an item the target would show) contributes 0:
    the log says nothing about it."""
    weights = logged.weights()
    columns = np.hstack([weights * logged.observed_rewards(), weights])
    return _estimate(logged, columns, _self_normalised, confidence, resamples, rng)


def dr(
    logged: LoggedSlates,
    confidence: float = 0.95,
    resamples: int = 1000,
    rng: int | np.random.Generator = 0,
) -> Estimate:
    """Doubly robust, per position: sum_j mean_i [rhat_target_ij + w_ij (r_ij - rhat_logged_ij)]."""
    if logged.reward_model_logged is None or logged.reward_model_target is None:
        raise ValueError("dr needs reward_model_logged and reward_model_target")
    shown = logged.shown
    residuals = np.where(shown, logged.rewards - logged.reward_model_logged, 0.0)
    direct = np.where(shown, logged.reward_model_target, 0.0)
    per_slate = (direct + logged.weights() * residuals).sum(axis=1, keepdims=True)
    return _estimate(logged, per_slate, _single_mean, confidence, resamples, rng)


def unsupported_mass(target_marginals: np.ndarray, logging_marginals: np.ndarray) -> float:
    """For one request, from the two policies' [n, K] marginals (`exploration.marginals`): the
    target's expected number of positions filled with an item the logging policy never shows
    there. IPS and SNIPS leave that part of the target's reward out."""
    target = np.asarray(target_marginals, dtype=np.float64)
    logging = np.asarray(logging_marginals, dtype=np.float64)
    if target.shape != logging.shape:
        raise ValueError(f"marginals differ in shape: {target.shape} and {logging.shape}")
    return float(target[logging == 0].sum())


def target_expected_reward(target_marginals: np.ndarray, predictions: np.ndarray) -> np.ndarray:
    """For one request: [K] reward model expectation under the target policy, sum over
    candidates of P_target(c at j) * rhat(c, j), from [n, K] marginals and predictions: the
    request's row of `LoggedSlates.reward_model_target`."""
    target = np.asarray(target_marginals, dtype=np.float64)
    predictions = np.asarray(predictions, dtype=np.float64)
    if target.shape != predictions.shape:
        raise ValueError(
            f"marginals and predictions differ in shape: {target.shape} and {predictions.shape}"
        )
    return (target * predictions).sum(axis=0)


@dataclass(frozen=True)
class PositionRewardModel:
    """Logistic reward model: P(reward) = sigmoid(features . coef + intercept of the position)."""

    coef: np.ndarray  # [d]
    intercepts: np.ndarray  # [K]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """[..., K, d] features of the items at each position -> [..., K] predicted rewards."""
        features = np.asarray(features, dtype=np.float64)
        expected = (len(self.intercepts), len(self.coef))
        if features.shape[-2:] != expected:
            raise ValueError(f"features must end in shape {expected}, got {features.shape}")
        return expit(features @ self.coef + self.intercepts)


def fit_position_reward_model(
    features: np.ndarray, rewards: np.ndarray, l2: float = 1.0, steps: int = 20
) -> PositionRewardModel:
    """Fit a `PositionRewardModel` to logged slates: `features` [N, K, d] of the logged items,
    `rewards` [N, K] in [0, 1] (nan at missing positions, which are skipped). Ridge-penalised
    cross-entropy minimised by Newton steps (IRLS). The penalty covers the intercepts too, so
    that a position without a single positive reward keeps a finite intercept."""
    features = np.asarray(features, dtype=np.float64)
    rewards = np.asarray(rewards, dtype=np.float64)
    if features.ndim != 3 or features.shape[:2] != rewards.shape:
        raise ValueError(
            f"features must be [N, K, d] over rewards [N, K], got {features.shape} and "
            f"{rewards.shape}"
        )
    if not l2 > 0:
        raise ValueError(f"l2 must be positive, got {l2}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    shown = ~np.isnan(rewards)
    if not shown.any():
        raise ValueError("no logged reward to fit")
    _check_unit_interval("rewards", rewards[shown])
    if not np.isfinite(features[shown]).all():
        raise ValueError("features must be finite at shown positions")
    k, d = rewards.shape[1], features.shape[2]
    position = np.broadcast_to(np.eye(k), (*rewards.shape, k))
    design = np.concatenate([features, position], axis=2)[shown]
    theta = newton_logistic(design, rewards[shown], l2, steps)
    return PositionRewardModel(coef=theta[:d], intercepts=theta[d:])


def newton_logistic(
    design: np.ndarray, targets: np.ndarray, l2: float | np.ndarray, steps: int = 20
) -> np.ndarray:
    """Coefficients of a logistic regression of `targets` in [0, 1] on `design` [n, d],
    minimising cross-entropy plus 1/2 l2 |theta|^2 by Newton steps (IRLS); `l2` a scalar or
    one penalty per column (0: unpenalised)."""
    theta = np.zeros(design.shape[1])
    l2 = np.broadcast_to(np.asarray(l2, dtype=np.float64), theta.shape)
    for _ in range(steps):
        predicted = expit(design @ theta)
        gradient = design.T @ (predicted - targets) + l2 * theta
        hessian = (design.T * (predicted * (1.0 - predicted))) @ design + np.diag(l2)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < _NEWTON_TOLERANCE:
            break
    return theta


def _single_mean(means: np.ndarray) -> np.ndarray:
    return means[:, 0]


def _self_normalised(means: np.ndarray) -> np.ndarray:
    """[B, 2K] means of (weighted rewards, weights) -> [B] sum over positions of their ratio."""
    numerator, denominator = np.split(means, 2, axis=1)
    ratio = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    return ratio.sum(axis=1)


def _estimate(
    logged: LoggedSlates,
    columns: np.ndarray,
    statistic: Callable[[np.ndarray], np.ndarray],
    confidence: float,
    resamples: int,
    rng: int | np.random.Generator,
) -> Estimate:
    """An estimate that is `statistic` of the column means of per-slate `columns` [N, m], with
    a percentile bootstrap interval from resampling whole slates."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    value = statistic(columns.mean(axis=0, keepdims=True))[0]
    replicates = statistic(_bootstrap_means(columns, resamples, np.random.default_rng(rng)))
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(replicates, [tail, 1.0 - tail])
    return Estimate(float(value), float(low), float(high), len(columns), logged.unsupported())


def _bootstrap_means(columns: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """[resamples, m] column means over resamples of N slates drawn with replacement."""
    n = len(columns)
    chunk = max(1, _BOOTSTRAP_CHUNK_DRAWS // n)
    means = np.empty((resamples, columns.shape[1]))
    for start in range(0, resamples, chunk):
        rows = min(chunk, resamples - start)
        draws = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
        counts = np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)
        means[start : start + rows] = counts @ columns / n
    return means


def _check_unit_interval(name: str, values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise ValueError(f"{name} must be finite")
    if values.size and (values.min() < 0.0 or values.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1]")
