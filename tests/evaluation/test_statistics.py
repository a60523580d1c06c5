"""Tests for recommender.evaluation.statistics: each function against an independent computation
(scipy or the textbook formula written out), its edge cases, and, for the sequential test, its
false-positive rate under daily peeking."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from recommender.evaluation import statistics
from recommender.evaluation.statistics import (
    DEFAULT_MIXTURE_VARIANCE,
    Counts,
    Interval,
    always_valid_comparison,
    always_valid_count_comparison,
    bootstrap_interval,
    count_rate_interval,
    mean_interval,
    paired_difference,
    sample_ratio_mismatch,
    wilson_interval,
)


def assert_plain_json(payload: dict) -> None:
    """Every number is a plain Python float/int/bool (storable in MongoDB, dumpable as JSON)."""

    def walk(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            assert value is None or type(value) in (float, int, bool, str), type(value)

    walk(payload)
    json.dumps(payload)


# --- Wilson ---------------------------------------------------------------------------------


def test_wilson_matches_the_formula_for_8_of_10() -> None:
    z = stats.norm.ppf(0.975)
    # Wilson with p = 0.8, n = 10: centre (p + z^2/2n) / (1 + z^2/n), half-width
    # z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/4n^2).
    centre = (0.8 + z**2 / 20) / (1 + z**2 / 10)
    half = z / (1 + z**2 / 10) * math.sqrt(0.8 * 0.2 / 10 + z**2 / 400)
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(centre - half, rel=1e-12)
    assert high == pytest.approx(centre + half, rel=1e-12)
    scipy_ci = stats.binomtest(8, 10).proportion_ci(0.95, method="wilson")
    assert (low, high) == pytest.approx((scipy_ci.low, scipy_ci.high), rel=1e-9)


def test_wilson_narrows_with_lower_confidence() -> None:
    wide, narrow = wilson_interval(8, 10, 0.99), wilson_interval(8, 10, 0.80)
    assert wide[0] < narrow[0] < 0.8 < narrow[1] < wide[1]


def test_wilson_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    z2 = stats.norm.ppf(0.975) ** 2
    # With no successes the formula reduces to [0, z^2 / (n + z^2)]; all successes mirror it.
    low, high = wilson_interval(0, 20)
    assert low == 0.0
    assert high == pytest.approx(z2 / (20 + z2), rel=1e-12)
    low, high = wilson_interval(20, 20)
    assert high == 1.0
    assert low == pytest.approx(1 - z2 / (20 + z2), rel=1e-12)
    assert 0.0 <= low <= high <= 1.0
    assert wilson_interval(np.int64(3), np.int64(7)) == wilson_interval(3, 7)


@pytest.mark.parametrize(
    ("successes", "trials", "confidence"),
    [(-1, 10, 0.95), (1, -1, 0.95), (11, 10, 0.95), (1, 10, 0.0), (1, 10, 1.0)],
)
def test_wilson_rejects_invalid_input(successes: int, trials: int, confidence: float) -> None:
    with pytest.raises(ValueError):
        wilson_interval(successes, trials, confidence)


def test_wilson_rejects_fractional_counts() -> None:
    with pytest.raises(TypeError):
        wilson_interval(2.5, 10)  # type: ignore[arg-type]


# --- mean_interval --------------------------------------------------------------------------


def test_mean_interval_matches_student_t() -> None:
    values = [0.412, 0.398, 0.421, 0.405, 0.417]
    mean = float(np.mean(values))
    low, high = stats.t.interval(0.95, len(values) - 1, loc=mean, scale=stats.sem(values))
    result = mean_interval(values)
    assert result == Interval(
        pytest.approx(mean), pytest.approx(low), pytest.approx(high), len(values)
    )
    payload = result.as_dict()
    assert payload == {"mean": pytest.approx(mean), "ci": pytest.approx([low, high]), "n": 5}
    assert_plain_json(payload)


def test_mean_interval_of_one_value_is_the_value() -> None:
    assert mean_interval([0.3]) == Interval(0.3, 0.3, 0.3, 1)


@pytest.mark.parametrize("values", [[1.0, math.nan], [math.inf, 1.0], []])
def test_mean_interval_rejects_non_finite_or_empty(values: list[float]) -> None:
    with pytest.raises(ValueError):
        mean_interval(values)


# --- paired_difference ----------------------------------------------------------------------


def test_paired_difference_matches_ttest_rel() -> None:
    rng = np.random.default_rng(7)
    b = rng.normal(0.40, 0.02, size=8)
    a = b + rng.normal(0.01, 0.005, size=8)
    reference = stats.ttest_rel(a, b)
    reference_ci = reference.confidence_interval(0.95)
    result = paired_difference(a, b)
    assert result.mean_difference == pytest.approx(float(np.mean(a - b)))
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-9)
    assert (result.low, result.high) == pytest.approx((reference_ci.low, reference_ci.high))
    assert result.n == 8
    assert_plain_json(result.as_dict())


def test_paired_difference_with_identical_differences() -> None:
    shifted = paired_difference([1.0, 2.0, 3.0], [0.5, 1.5, 2.5])
    assert (shifted.mean_difference, shifted.low, shifted.high) == (0.5, 0.5, 0.5)
    assert shifted.p_value == 0.0
    same = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert (same.mean_difference, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)


@pytest.mark.parametrize(("a", "b"), [([1.0, 2.0, 3.0], [1.0, 2.0]), ([1.0], [0.0])])
def test_paired_difference_rejects_unpaired_or_single(a: list[float], b: list[float]) -> None:
    with pytest.raises(ValueError):
        paired_difference(a, b)


# --- bootstrap_interval ---------------------------------------------------------------------


def test_bootstrap_interval_of_the_mean_on_normal_draws() -> None:
    n, sd = 200, 2.0
    values = np.random.default_rng(11).normal(5.0, sd, size=n)
    low, high = bootstrap_interval(values, rng=3)
    assert low < float(np.mean(values)) < high
    # The bootstrap width estimates 2 * 1.96 * sd / sqrt(n) with two errors: the sample sd of 200
    # normal draws is off by about 1/sqrt(2n) = 5% (relative), and each percentile of 2000
    # resamples adds about 2% to the width. 20% is over three times their combined spread.
    assert high - low == pytest.approx(2 * 1.96 * sd / math.sqrt(n), rel=0.2)
    assert bootstrap_interval(values, rng=3) == (low, high)
    assert bootstrap_interval(values, rng=np.random.default_rng(3)) == (low, high)


def test_bootstrap_interval_covers_the_true_mean_about_95_percent() -> None:
    rng = np.random.default_rng(12)
    datasets = rng.normal(0.0, 1.0, size=(200, 50))
    covered = [
        low <= 0.0 <= high
        for low, high in (bootstrap_interval(row, resamples=500, rng=rng) for row in datasets)
    ]
    # Percentile intervals run a little short of 95% at n = 50; the count of 200 covering
    # datasets has a binomial spread of about 1.5 points, so [0.88, 0.99] is a wide but
    # discriminating band (a broken interval, e.g. one standard error wide, covers about 68%).
    assert 0.88 <= float(np.mean(covered)) <= 0.99


def test_bootstrap_interval_chunks_reproduce_one_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(13).exponential(size=150)
    whole = bootstrap_interval(values, statistic=np.median, resamples=700, rng=9)
    monkeypatch.setattr(statistics, "BOOTSTRAP_CHUNK_VALUES", 150 * 64)  # 11 chunks
    assert bootstrap_interval(values, statistic=np.median, resamples=700, rng=9) == whole
    assert whole != bootstrap_interval(values, statistic=np.median, resamples=700, rng=10)


def test_bootstrap_interval_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        bootstrap_interval([1.0, math.nan])
    with pytest.raises(ValueError):
        bootstrap_interval([1.0, 2.0], resamples=0)


# --- sample_ratio_mismatch ------------------------------------------------------------------


def test_srm_balanced_counts_do_not_flag() -> None:
    check = sample_ratio_mismatch([50_100, 49_900], [0.5, 0.5])
    assert not check.mismatch
    # chi2 = 2 * 100^2 / 50,000
    assert check.chi2 == pytest.approx(0.4)
    assert check.p_value == pytest.approx(stats.chisquare([50_100, 49_900]).pvalue)
    assert check.expected == (50_000.0, 50_000.0)


def test_srm_flags_a_52_48_split() -> None:
    check = sample_ratio_mismatch([52_000, 48_000], [0.5, 0.5])
    assert check.mismatch
    assert check.chi2 == pytest.approx(2 * 2_000**2 / 50_000)
    assert check.p_value == pytest.approx(stats.chisquare([52_000, 48_000]).pvalue, rel=1e-9)
    payload = check.as_dict()
    assert payload["observed"] == [52_000, 48_000]
    assert payload["mismatch"] is True
    assert_plain_json(payload)


def test_srm_p_value_matches_chisquare_for_uneven_shares() -> None:
    observed, shares = [4_890, 2_560, 2_550], [0.5, 0.25, 0.25]
    check = sample_ratio_mismatch(observed, shares)
    reference = stats.chisquare(observed, f_exp=[sum(observed) * share for share in shares])
    assert check.chi2 == pytest.approx(reference.statistic)
    assert check.p_value == pytest.approx(reference.pvalue, rel=1e-9)


def test_srm_without_observations() -> None:
    check = sample_ratio_mismatch([0, 0], [0.3, 0.7])
    assert (check.p_value, check.mismatch) == (1.0, False)


@pytest.mark.parametrize(
    ("observed", "shares"),
    [
        ([10, 10], [0.5, 0.4]),
        ([10, 10], [1.2, -0.2]),
        ([10, 10, 10], [0.5, 0.5, 0.0]),
        ([10, 10], [0.5, 0.25, 0.25]),
        ([10], [1.0]),
        ([10, -1], [0.5, 0.5]),
    ],
)
def test_srm_rejects_invalid_input(observed: list[int], shares: list[float]) -> None:
    with pytest.raises(ValueError):
        sample_ratio_mismatch(observed, shares)


# --- always_valid_comparison (mSPRT) --------------------------------------------------------


def test_msprt_keeps_false_positives_below_alpha_under_daily_peeking() -> None:
    experiments, days, per_day, rate, alpha = 300, 20, 200, 0.10, 0.05
    rng = np.random.default_rng(2017)
    control = np.cumsum(rng.binomial(per_day, rate, size=(experiments, days)), axis=1)
    treatment = np.cumsum(rng.binomial(per_day, rate, size=(experiments, days)), axis=1)
    trials = per_day * np.arange(1, days + 1)
    z_critical = stats.norm.ppf(1 - alpha / 2)

    msprt_fired = np.zeros(experiments, dtype=bool)
    naive_fired = np.zeros(experiments, dtype=bool)
    for e in range(experiments):
        for day in range(days):
            c, t, n = int(control[e, day]), int(treatment[e, day]), int(trials[day])
            result = always_valid_comparison(c, n, t, n, alpha=alpha)
            msprt_fired[e] |= result.decision != "no difference yet"
            # The naive fixed-sample two-proportion z-test, read every day.
            pooled = (c + t) / (2 * n)
            z = (t - c) / n / math.sqrt(pooled * (1 - pooled) * 2 / n)
            naive_fired[e] |= abs(z) > z_critical

    # For a valid test the number of the 300 A/A experiments that ever fire is binomial with a
    # rate of at most alpha; its 99.9th percentile bounds the observed share except in 1 run out
    # of 1000 of a correct test, whatever the seed.
    allowance = stats.binom.ppf(0.999, experiments, alpha) / experiments
    assert msprt_fired.mean() <= allowance
    # The same data read the naive way fires far more often: peeking is what the test guards.
    assert naive_fired.mean() > allowance


def power_counts() -> tuple[int, int, int, int]:
    """A seeded experiment: control converts at 0.10, treatment at 0.13, 5,000 visitors each."""
    rng = np.random.default_rng(42)
    n = 5_000
    return int(rng.binomial(n, 0.10)), n, int(rng.binomial(n, 0.13)), n


def test_msprt_detects_a_three_point_lift() -> None:
    control_successes, control_trials, treatment_successes, treatment_trials = power_counts()
    result = always_valid_comparison(
        control_successes, control_trials, treatment_successes, treatment_trials
    )
    assert result.decision == "treatment better"
    assert result.difference_ci is not None
    low, high = result.difference_ci
    assert 0.0 < low <= 0.03 <= high
    assert result.p_value < 0.05
    control_rate = control_successes / control_trials
    difference = treatment_successes / treatment_trials - control_rate
    assert result.difference == pytest.approx(difference)
    assert result.lift == pytest.approx(difference / control_rate)
    assert result.lift_ci == pytest.approx((low / control_rate, high / control_rate))
    payload = result.as_dict()
    assert set(payload) == {
        "difference",
        "difference_ci",
        "lift",
        "lift_ci",
        "p_value",
        "decision",
        "method",
    }
    assert "mSPRT" in payload["method"]
    assert_plain_json(payload)


def test_msprt_decision_flips_when_arms_swap() -> None:
    control_successes, control_trials, treatment_successes, treatment_trials = power_counts()
    forward = always_valid_comparison(
        control_successes, control_trials, treatment_successes, treatment_trials
    )
    swapped = always_valid_comparison(
        treatment_successes, treatment_trials, control_successes, control_trials
    )
    assert (forward.decision, swapped.decision) == ("treatment better", "control better")
    assert swapped.difference == pytest.approx(-forward.difference)
    assert forward.difference_ci is not None and swapped.difference_ci is not None
    assert swapped.difference_ci == pytest.approx(
        (-forward.difference_ci[1], -forward.difference_ci[0])
    )
    assert swapped.p_value == pytest.approx(forward.p_value)


def test_msprt_matches_the_papers_likelihood_ratio() -> None:
    # Johari et al. write the normal-mixture ratio per observation pair: with n pairs, per-pair
    # variance s2 and mean difference d, sqrt(s2 / (s2 + n tau2)) exp(n^2 tau2 d^2 / (2 s2 (s2 +
    # n tau2))). The variance is per arm's rate with one success and one failure added.
    c, t, n, tau2 = 130, 171, 1_200, DEFAULT_MIXTURE_VARIANCE
    rc, rt = (c + 1) / (n + 2), (t + 1) / (n + 2)
    s2 = rc * (1 - rc) + rt * (1 - rt)
    d = (t - c) / n
    ratio = math.sqrt(s2 / (s2 + n * tau2)) * math.exp(
        n**2 * tau2 * d**2 / (2 * s2 * (s2 + n * tau2))
    )
    result = always_valid_comparison(c, n, t, n)
    assert result.p_value == pytest.approx(min(1.0, 1 / ratio), rel=1e-9)

    # The interval is the set of differences the test does not reject: its ends sit exactly on
    # a likelihood ratio of 1 / alpha.
    assert result.difference_ci is not None
    for end in result.difference_ci:
        at_end = math.sqrt(s2 / (s2 + n * tau2)) * math.exp(
            n**2 * tau2 * (d - end) ** 2 / (2 * s2 * (s2 + n * tau2))
        )
        assert at_end == pytest.approx(1 / 0.05, rel=1e-9)


def test_msprt_decision_agrees_with_its_p_value() -> None:
    rng = np.random.default_rng(5)
    for _ in range(300):
        n_c, n_t = (int(x) for x in rng.integers(1, 3_000, size=2))
        c, t = int(rng.binomial(n_c, 0.1)), int(rng.binomial(n_t, rng.uniform(0.05, 0.2)))
        result = always_valid_comparison(c, n_c, t, n_t)
        assert result.difference_ci is not None
        low, high = result.difference_ci
        assert -1.0 <= low <= result.difference <= high <= 1.0
        assert (result.decision != "no difference yet") == (result.p_value < 0.05)


def test_msprt_with_an_empty_arm() -> None:
    for counts in [(0, 0, 5, 40), (5, 40, 0, 0), (0, 0, 0, 0)]:
        result = always_valid_comparison(*counts)
        assert result.difference == 0.0
        assert result.difference_ci is None and result.lift is None and result.lift_ci is None
        assert (result.p_value, result.decision) == (1.0, "no difference yet")
        assert_plain_json(result.as_dict())


def test_msprt_with_no_control_conversions_has_no_lift() -> None:
    result = always_valid_comparison(0, 500, 40, 500)
    assert result.difference == pytest.approx(0.08)
    assert result.difference_ci is not None
    assert result.lift is None and result.lift_ci is None


@pytest.mark.parametrize(
    "arguments",
    [
        {"control_successes": 11, "control_trials": 10},
        {"treatment_successes": -1},
        {"alpha": 0.0},
        {"mixture_variance": 0.0},
    ],
)
def test_msprt_rejects_invalid_input(arguments: dict) -> None:
    counts = {
        "control_successes": 5,
        "control_trials": 10,
        "treatment_successes": 5,
        "treatment_trials": 10,
    }
    with pytest.raises(ValueError):
        always_valid_comparison(**(counts | arguments))


def test_counts_of_zeros_and_ones_are_the_proportion_test():
    proportion = always_valid_comparison(30, 200, 55, 210)
    counts = always_valid_count_comparison(Counts(200, 30, 30), Counts(210, 55, 55))
    assert counts == proportion
    assert count_rate_interval(Counts(200, 30, 30)) == wilson_interval(30, 200)


def test_count_means_use_their_own_variance():
    # 100 units: 80 with no click, 10 with one, 10 with three -> mean 0.4, E[x^2] 1.0.
    counts = Counts(100, 10 * 1 + 10 * 3, 10 * 1 + 10 * 9)
    assert not counts.binary and counts.mean == pytest.approx(0.4)
    pseudo_mean, pseudo_second = (40 + 1) / 102, (100 + 1) / 102
    assert counts.variance_of_mean() == pytest.approx((pseudo_second - pseudo_mean**2) / 100)
    low, high = count_rate_interval(counts)
    radius = stats.norm.ppf(0.975) * math.sqrt(counts.variance_of_mean())
    assert (low, high) == pytest.approx((0.4 - radius, 0.4 + radius))
    with pytest.raises(ValueError):
        Counts(10, 5, 4)  # a sum of squares below the sum: not counts


def test_a_count_difference_beyond_one_is_not_clipped():
    control, treatment = Counts(400, 40, 40), Counts(400, 900, 2500)  # ~2.25 clicks per unit
    result = always_valid_count_comparison(control, treatment)
    assert result.decision == "treatment better"
    assert result.difference == pytest.approx(900 / 400 - 0.1)
    assert result.difference_ci[1] > 1.0
