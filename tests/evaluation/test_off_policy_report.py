"""The off-policy report on a hand-made log (tests/evaluation/logged.py): exact IPS and SNIPS,
skipped documents, engines that cannot answer, anonymous requests, the cache."""

from __future__ import annotations

import pytest

from recommender.services import off_policy
from recommender.services.off_policy import UnknownEngineError, off_policy_report
from recommender.store import get_db
from tests.app_helpers import change_settings
from tests.evaluation import logged


@pytest.fixture
def log(app, monkeypatch):
    logged.prepare(monkeypatch)


def test_exact_ips_and_snips_of_a_deterministic_and_the_random_engine(log):
    report = off_policy_report(fresh=True)

    assert report.logged == 2
    assert report.skipped == {"without_propensities": 1, "invalid": 0}
    first, random = report.engines["First"], report.engines["Random"]
    assert first.status == random.status == "ok"
    assert first.n == random.n == 2
    assert first.estimates["ips"].value == pytest.approx(logged.FIRST_IPS)
    assert first.estimates["snips"].value == pytest.approx(logged.FIRST_SNIPS)
    assert random.estimates["ips"].value == pytest.approx(logged.RANDOM_IPS)
    assert random.estimates["snips"].value == pytest.approx(logged.RANDOM_SNIPS)
    for estimate in (*first.estimates.values(), *random.estimates.values()):
        assert estimate.ci_low <= estimate.value <= estimate.ci_high


def test_dr_is_the_model_term_plus_weighted_residuals(log, monkeypatch):
    """DR of a reward model predicting a constant c everywhere: sum_j mean_i [c + w_ij (r_ij
    - c)], by hand from the log's weights and rewards."""
    c = 0.1
    monkeypatch.setattr(
        off_policy.offpolicy.PositionRewardModel, "predict", lambda self, x: x[..., 0] * 0 + c
    )
    first = off_policy_report(fresh=True).engines["First"]
    # A: weights [2, 2, 4], rewards [1, 0, 0]; B: weights 0, rewards [0, 0.3, 0].
    a = (c + 2 * (1 - c)) + (c + 2 * (0 - c)) + (c + 4 * (0 - c))
    b = 3 * c
    assert first.estimates["dr"].value == pytest.approx((a + b) / 2)


def test_an_engine_without_a_model_is_reported_with_its_reason(log):
    untrained = off_policy_report(fresh=True).engines["Untrained"]

    assert untrained.status == "not trained"
    assert untrained.reason == "Missing model in db"
    assert untrained.estimates == {}
    assert untrained.as_json()["ips"] is None


def test_anonymous_requests_count_only_for_engines_that_serve_anonymous_visitors(log):
    logged.recommendation([1, 2, 3], [0.5, 0.5, 0.25], minutes=30, user=None)
    report = off_policy_report(fresh=True)

    assert report.logged == 3
    assert report.engines["First"].n == 3
    assert report.engines["Named"].n == 2
    assert report.engines["Named"].estimates["ips"].value == pytest.approx(logged.FIRST_IPS)
    # The anonymous request got no click: First's IPS is averaged over one more zero.
    assert report.engines["First"].estimates["ips"].value == pytest.approx(2.0 / 3)


def test_propensities_that_do_not_fit_the_slate_are_counted_invalid(log):
    logged.recommendation([1, 2, 3], [0.5, 0.5], minutes=40)  # one too few
    logged.recommendation([1, 2, 3], [0.5, 0.0, 0.5], minutes=41)  # 0: never shown
    logged.recommendation([1, 2, 3, 4], [1, 1, 1, 1], minutes=42)  # a ranking
    report = off_policy_report(fresh=True)

    assert report.logged == 2
    assert report.skipped == {"without_propensities": 1, "invalid": 3}
    assert report.engines["First"].estimates["ips"].value == pytest.approx(logged.FIRST_IPS)


def test_max_logged_keeps_the_newest(log):
    report = off_policy_report(max_logged=1, fresh=True)

    assert report.logged == 1
    # Only B (newer than A) is left: First shows none of B's items where B had them.
    assert report.engines["First"].estimates["ips"].value == 0.0
    assert report.engines["Random"].estimates["ips"].value == pytest.approx(0.4 * 0.3)


def test_epsilon_logging_supports_every_target_and_greedy_logging_does_not(log):
    report = off_policy_report(fresh=True)
    assert report.engines["First"].unsupported_mass == 0.0

    logged.recommendation([3, 4, 5], [1.0, 1.0, 1.0], minutes=50, exploration=logged.GREEDY)
    report = off_policy_report(fresh=True)
    # On the greedy log [3, 4, 5] First's [1, 2, 3] is never supported: 3 positions of 3 there.
    assert report.engines["First"].unsupported_mass == pytest.approx((0 + 0 + 3) / 3)
    # Random puts 1/5 on each logged item: 3 positions x 4/5 outside the log's support.
    assert report.engines["Random"].unsupported_mass == pytest.approx((0 + 0 + 3 * 0.8) / 3)


def test_no_log_gives_a_reason_per_engine(app, monkeypatch):
    logged.load_catalogue()
    logged.use_targets(monkeypatch)
    report = off_policy_report(fresh=True)

    assert report.logged == 0
    assert report.engines["First"].status == "no data"
    assert report.engines["Untrained"].status == "not trained"


def test_unknown_targets_are_refused_by_name(log):
    with pytest.raises(UnknownEngineError, match="Nope"):
        off_policy_report(["First", "Nope"])
    with pytest.raises(UnknownEngineError, match="RandomRanking"):
        off_policy_report(["RandomRanking"])  # a ranking variant is no top-K target


def test_a_report_is_reused_until_its_time_is_up(log):
    change_settings(OFF_POLICY_CACHE_SECONDS=3600)
    first = off_policy_report(fresh=True)
    logged.recommendation([1, 2, 3], [0.5, 0.5, 0.25], minutes=60)

    assert off_policy_report() is first
    assert off_policy_report(fresh=True).logged == 3

    change_settings(OFF_POLICY_CACHE_SECONDS=0)
    assert off_policy_report() is not off_policy_report()


@pytest.mark.parametrize("scores", ["scored", "ranking"])
def test_plackett_luce_support_is_the_replayed_pool_or_unknown(app, monkeypatch, scores):
    """The pool comes from the logging engine's scores, or its ranking when it has none."""
    if scores == "ranking":
        monkeypatch.setattr(logged.First, "scored", lambda self, context: None)
    logged.load_catalogue()
    logged.use_targets(monkeypatch)
    pool = {"method": "plackett_luce", "epsilon": 0.0, "temperature": 1.0, "pool": 3}
    # Logged by First with a pool of 3: its ranking puts candidates 1, 2, 3 in the pool.
    replayed = logged.recommendation([2, 1, 3], [0.4, 0.4, 0.5], minutes=0, exploration=pool)
    get_db().recommendation.update_one(
        {"_id": replayed["_id"]}, {"$set": {"policy.engine": "First"}}
    )
    # Logged by an engine this app does not serve: its pool cannot be known.
    logged.recommendation([2, 1, 3], [0.4, 0.4, 0.5], minutes=1, exploration=pool)
    report = off_policy_report(fresh=True)

    assert report.engines["First"].unsupported_mass == 0.0
    assert report.engines["First"].support_unknown == 1
    # Random shows 4 and 5 (outside the pool) with 1/5 each at each of 3 positions.
    assert report.engines["Random"].unsupported_mass == pytest.approx(3 * 2 * 0.2)


def test_an_engine_that_fails_is_reported_without_hiding_the_others(log, monkeypatch):
    def broken(self, context, k):
        raise RuntimeError("scores went missing")

    monkeypatch.setattr(logged.First, "recommend", broken)
    report = off_policy_report(fresh=True)

    assert report.engines["First"].status == "failed"
    assert "scores went missing" in report.engines["First"].reason
    assert report.engines["Random"].estimates["ips"].value == pytest.approx(logged.RANDOM_IPS)
