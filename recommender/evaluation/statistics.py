"""Statistics for evaluation reports and online experiments: intervals, paired tests, checks.

Offline reports (a metric over a few seeds, two engines on the same seeds or users) use the
classical fixed-sample tools: `mean_interval`, `paired_difference`, `bootstrap_interval`.
Online A/B experiments use `wilson_interval` (or `count_rate_interval` for a mean count per unit,
such as clicks per impression) for one arm, `sample_ratio_mismatch` to check that assignment
follows the configured shares, and `always_valid_comparison` (`always_valid_count_comparison`)
to compare the arms.

What "always valid" means for an operator
-----------------------------------------
A classical p-value is only valid when read once, at a sample size fixed in advance. Reading it
every day and stopping at the first "significant" day raises the false-positive rate far above
alpha. The always-valid p-value and interval of `always_valid_comparison` may be read after every
new visitor, as often as anyone likes, and the experiment stopped whenever they look convincing:
the chance that an experiment without any real difference *ever* shows "treatment better" or
"control better" stays below alpha. The price is a wider interval than a fixed-sample one at the
same sample size.

The test is the mixture sequential probability ratio test (mSPRT) of Johari, Koomen, Pekelis and
Walsh (2017, "Peeking at A/B tests"). With d the observed difference of the two conversion rates
(treatment - control), V its estimated variance and a normal mixture N(theta0, tau^2) over the
true difference, the likelihood ratio against "the true difference is theta0" is

    Lambda(theta0) = sqrt(V / (V + tau^2)) * exp(tau^2 (d - theta0)^2 / (2 V (V + tau^2)))

Its reciprocal is a p-value valid at any stopping time (Ville's inequality), and the differences
it does not reject at level alpha form the interval d +/- h, with

    h^2 = 2 V (V + tau^2) / tau^2 * (ln(1 / alpha) + ln((V + tau^2) / V) / 2).

V comes from the normal approximation of the two sample means,
V = r_c (1 - r_c) / n_c + r_t (1 - r_t) / n_t, each arm's rate r taken with one success and one
failure added (Agresti and Caffo, 2000) so that an arm with no conversions yet (or only
conversions) does not claim zero uncertainty; the reported difference uses the raw rates. For
mean counts per unit, V is each arm's sample variance of the counts over its units (with the same
two pseudo-units added), which is the binomial variance when every count is 0 or 1.

Default mixture variance: tau = 0.03 (tau^2 = 0.0009). tau is the size of difference the test is
tuned for: the mixture spreads its power over differences of roughly +/- tau, i.e. a few points of
conversion or click-through rate, the kind of effect a recommender change can have. At
alpha = 0.05 the interval is narrowest when V is about tau^2 / 8 (around 1,600 visitors per arm
for rates near 10%) and widens only slowly, logarithmically, away from that, so the default suits
both small and large experiments. Pass `mixture_variance` to tune it from past experiments; it
must be fixed before the experiment starts, never chosen from its data.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

DEFAULT_MIXTURE_VARIANCE = 0.03**2
SHARES_TOLERANCE = 1e-9
# Bootstrap resamples are drawn this many values at a time, to bound memory on large inputs.
BOOTSTRAP_CHUNK_VALUES = 1_000_000

Decision = Literal["treatment better", "control better", "no difference yet"]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _count(value: int, name: str) -> int:
    """`value` as a non-negative int (numpy integers accepted, floats refused)."""
    count = operator.index(value)
    if count < 0:
        raise ValueError(f"{name} must not be negative, got {count}")
    return count


def _finite_values(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    """`values` as a non-empty 1-D float array of finite numbers (NaN or inf would poison every
    statistic silently)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must all be finite")
    return array


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion: unlike the normal (Wald) interval it stays
    inside [0, 1] and keeps a width when there are no (or only) successes. (0.0, 1.0) for no
    trials: nothing is known yet."""
    successes = _count(successes, "successes")
    trials = _count(trials, "trials")
    if successes > trials:
        raise ValueError(f"successes ({successes}) cannot exceed trials ({trials})")
    _check_confidence(confidence)
    if trials == 0:
        return 0.0, 1.0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    rate = successes / trials
    shrink = 1 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / shrink
    half = z / shrink * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials))
    # Rounding can leave the bounds a hair outside [0, 1] at 0 or all successes.
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Interval:
    """A mean with its confidence interval, over `n` values."""

    mean: float
    low: float
    high: float
    n: int

    def as_dict(self) -> dict:
        return {"mean": float(self.mean), "ci": [float(self.low), float(self.high)], "n": self.n}


def mean_interval(values: Sequence[float] | np.ndarray, confidence: float = 0.95) -> Interval:
    """Student-t interval of the mean, e.g. of a metric over a handful of seeds (the t quantile,
    not the normal one, accounts for estimating the spread from so few values). With one value no
    spread can be estimated: low = high = mean."""
    _check_confidence(confidence)
    array = _finite_values(values)
    n = int(array.size)
    mean = float(array.mean())
    if n == 1:
        return Interval(mean, mean, mean, 1)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * float(array.std(ddof=1)) / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


@dataclass(frozen=True)
class PairedComparison:
    """Mean of the paired differences a - b, its confidence interval and two-sided p-value."""

    mean_difference: float
    low: float
    high: float
    p_value: float
    n: int

    def as_dict(self) -> dict:
        return {
            "mean_difference": float(self.mean_difference),
            "ci": [float(self.low), float(self.high)],
            "p_value": float(self.p_value),
            "n": self.n,
        }


def paired_difference(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> PairedComparison:
    """Paired t-test of a - b, for two engines measured on the same seeds or the same users:
    pairing removes the seed-to-seed (user-to-user) variation both share, which an unpaired test
    would count as noise. Needs at least two pairs. When every difference is the same there is no
    noise at all: p = 0 for a non-zero difference, 1 for none, and the interval is the point."""
    _check_confidence(confidence)
    first = _finite_values(a, "a")
    second = _finite_values(b, "b")
    if first.size != second.size:
        raise ValueError(f"a and b must pair up: {first.size} values against {second.size}")
    if first.size < 2:
        raise ValueError("a paired comparison needs at least two pairs")
    differences = first - second
    n = int(differences.size)
    mean = float(differences.mean())
    if np.all(differences == differences[0]):
        return PairedComparison(mean, mean, mean, 0.0 if mean != 0 else 1.0, n)
    standard_error = float(differences.std(ddof=1)) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * standard_error
    p_value = float(2 * stats.t.sf(abs(mean) / standard_error, n - 1))
    return PairedComparison(mean, mean - half, mean + half, p_value, n)


def bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    statistic: Callable[..., np.ndarray] = np.mean,
    confidence: float = 0.95,
    resamples: int = 2000,
    rng: np.random.Generator | int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic`, for statistics without a closed-form
    interval (medians, ratios, per-user metrics with skewed distributions). `statistic` must
    accept `axis=1` (numpy reductions do): resamples are evaluated as rows of a matrix, a chunk at
    a time. Seeded (`rng` a Generator or a seed), so a report can be reproduced."""
    _check_confidence(confidence)
    array = _finite_values(values)
    resamples = operator.index(resamples)
    if resamples < 1:
        raise ValueError(f"resamples must be positive, got {resamples}")
    generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    n = array.size
    rows = max(1, BOOTSTRAP_CHUNK_VALUES // n)
    estimates = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, rows):
        stop = min(start + rows, resamples)
        picks = generator.integers(0, n, size=(stop - start, n))
        estimates[start:stop] = statistic(array[picks], axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(estimates, [tail, 1 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class SampleRatioCheck:
    """Chi-square goodness-of-fit of the arms' assignment counts against the configured shares."""

    chi2: float
    p_value: float
    mismatch: bool
    observed: tuple[int, ...]
    expected: tuple[float, ...]

    def as_dict(self) -> dict:
        return {
            "chi2": float(self.chi2),
            "p_value": float(self.p_value),
            "mismatch": bool(self.mismatch),
            "observed": [int(count) for count in self.observed],
            "expected": [float(count) for count in self.expected],
        }


def sample_ratio_mismatch(
    observed: Sequence[int], expected_shares: Sequence[float], threshold: float = 0.001
) -> SampleRatioCheck:
    """Sample ratio mismatch check: are the arms' assignment counts compatible with the configured
    shares? A mismatch means assignment or logging is broken (bots, redirects, crashes in one arm)
    and the experiment's comparison cannot be trusted. The threshold is strict because the check is
    repeated daily and should only fire on real breakage. No observations yet: p = 1, no mismatch.
    """
    counts = [_count(count, "observed counts") for count in observed]
    shares = [float(share) for share in expected_shares]
    if len(counts) != len(shares):
        raise ValueError(f"{len(counts)} observed counts against {len(shares)} shares")
    if len(counts) < 2:
        raise ValueError("a sample ratio check needs at least two arms")
    if not all(math.isfinite(share) and share > 0 for share in shares):
        raise ValueError(f"shares must be positive, got {shares}")
    if abs(math.fsum(shares) - 1.0) > SHARES_TOLERANCE:
        raise ValueError(f"shares must sum to 1, got {math.fsum(shares)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between 0 and 1, got {threshold}")
    total = sum(counts)
    expected = tuple(total * share for share in shares)
    if total == 0:
        return SampleRatioCheck(0.0, 1.0, False, tuple(counts), expected)
    chi2 = math.fsum((count - exp) ** 2 / exp for count, exp in zip(counts, expected, strict=True))
    p_value = float(stats.chi2.sf(chi2, len(counts) - 1))
    return SampleRatioCheck(chi2, p_value, p_value < threshold, tuple(counts), expected)


@dataclass(frozen=True)
class SequentialComparison:
    """Always-valid comparison of two conversion rates (see the module docstring).

    `difference` is treatment rate - control rate; `difference_ci` the always-valid interval for
    it at the current sample size; `lift` the relative difference (difference / control rate) and
    `lift_ci` the difference's interval divided by the control rate's point estimate, an
    approximation that ignores the control rate's own uncertainty (both None when the control rate
    is 0). `p_value` is the always-valid p-value for "no difference".
    """

    difference: float
    difference_ci: tuple[float, float] | None
    lift: float | None
    lift_ci: tuple[float, float] | None
    p_value: float
    decision: Decision
    method: str

    def as_dict(self) -> dict:
        def pair(bounds: tuple[float, float] | None) -> list[float] | None:
            return None if bounds is None else [float(bounds[0]), float(bounds[1])]

        return {
            "difference": float(self.difference),
            "difference_ci": pair(self.difference_ci),
            "lift": None if self.lift is None else float(self.lift),
            "lift_ci": pair(self.lift_ci),
            "p_value": float(self.p_value),
            "decision": self.decision,
            "method": self.method,
        }


@dataclass(frozen=True)
class Counts:
    """Per-unit counts summarised: `units` (e.g. impressions), `total` (e.g. clicks over all of
    them) and `total_sq` (the sum of each unit's count squared). Counts that are all 0 or 1 make
    a proportion (`total_sq == total`)."""

    units: int
    total: int
    total_sq: int

    def __post_init__(self) -> None:
        for name in ("units", "total", "total_sq"):
            _count(getattr(self, name), name)
        if self.total_sq < self.total:
            raise ValueError("total_sq cannot be below total (counts are whole numbers)")

    @property
    def binary(self) -> bool:
        return self.total_sq == self.total

    @property
    def mean(self) -> float:
        return self.total / self.units if self.units else 0.0

    def variance_of_mean(self) -> float:
        """The mean's variance from the counts' own, with one unit of 0 and one of 1 added
        (Agresti-Caffo for a proportion), so that it is never zero."""
        mean = (self.total + 1) / (self.units + 2)
        second = (self.total_sq + 1) / (self.units + 2)
        return max(second - mean * mean, 0.0) / self.units


def count_rate_interval(counts: Counts, confidence: float = 0.95) -> tuple[float, float]:
    """Interval of the mean count per unit: Wilson's for a proportion, else the normal one with
    the counts' own variance (never below 0). No units: (0, 1) for a proportion."""
    if counts.binary or counts.units == 0:
        return wilson_interval(counts.total, counts.units, confidence)
    _check_confidence(confidence)
    z = stats.norm.ppf(0.5 + confidence / 2)
    radius = z * math.sqrt(counts.variance_of_mean())
    return max(0.0, counts.mean - radius), counts.mean + radius


def always_valid_comparison(
    control_successes: int,
    control_trials: int,
    treatment_successes: int,
    treatment_trials: int,
    alpha: float = 0.05,
    mixture_variance: float | None = None,
) -> SequentialComparison:
    """Compare two conversion rates with the normal-mixture mSPRT (see the module docstring): the
    p-value and interval may be read after every visitor without inflating false positives. The
    decision says which arm is better once the always-valid interval excludes 0.

    The p-value is min(1, 1 / likelihood ratio) at the current counts; it is valid whenever it is
    read, though it can rise again later. A caller keeping the daily history may report its running
    minimum (as Johari et al. do), which stays valid. No trials in either arm: no comparison yet.
    """
    if control_successes > control_trials or treatment_successes > treatment_trials:
        raise ValueError("successes cannot exceed trials")
    return always_valid_count_comparison(
        Counts(control_trials, control_successes, control_successes),
        Counts(treatment_trials, treatment_successes, treatment_successes),
        alpha,
        mixture_variance,
    )


def always_valid_count_comparison(
    control: Counts,
    treatment: Counts,
    alpha: float = 0.05,
    mixture_variance: float | None = None,
) -> SequentialComparison:
    """`always_valid_comparison` of two mean counts per unit (e.g. clicks per impression, where
    an impression may get more than one click); for proportions the two are the same test."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    tau2 = DEFAULT_MIXTURE_VARIANCE if mixture_variance is None else float(mixture_variance)
    if not (math.isfinite(tau2) and tau2 > 0):
        raise ValueError(f"mixture_variance must be positive, got {mixture_variance}")
    method = f"mSPRT (normal mixture, tau^2={tau2:g})"

    if control.units == 0 or treatment.units == 0:
        return SequentialComparison(0.0, None, None, None, 1.0, "no difference yet", method)

    control_rate = control.mean
    difference = treatment.mean - control_rate
    variance = control.variance_of_mean() + treatment.variance_of_mean()

    # Log of the mixture likelihood ratio against "no difference", in logs to avoid overflow.
    log_ratio = 0.5 * math.log(variance / (variance + tau2)) + tau2 * difference**2 / (
        2 * variance * (variance + tau2)
    )
    p_value = min(1.0, math.exp(-log_ratio))
    # Differences theta whose likelihood ratio stays below 1 / alpha (closed form, see above).
    radius = math.sqrt(
        2
        * variance
        * (variance + tau2)
        / tau2
        * (math.log(1 / alpha) + 0.5 * math.log((variance + tau2) / variance))
    )
    low, high = difference - radius, difference + radius
    if control.binary and treatment.binary:
        # A difference of two rates lies in [-1, 1]; cutting the interval there loses no coverage.
        low, high = max(-1.0, low), min(1.0, high)
    decision: Decision = "no difference yet"
    if low > 0:
        decision = "treatment better"
    elif high < 0:
        decision = "control better"

    lift = lift_ci = None
    if control_rate > 0:
        lift = difference / control_rate
        lift_ci = (low / control_rate, high / control_rate)
    return SequentialComparison(difference, (low, high), lift, lift_ci, p_value, decision, method)
