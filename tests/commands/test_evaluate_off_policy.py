"""`flask evaluate --off-policy [--json]` on the hand-made log of tests/evaluation/logged.py."""

from __future__ import annotations

import json

import pytest

from tests.evaluation import logged


@pytest.fixture
def log(app, monkeypatch):
    logged.prepare(monkeypatch)


def test_text_lists_every_engine_with_its_estimates_or_its_reason(cli, log):
    result = cli("evaluate", "--off-policy")

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "logged recommendations used: 2" in lines[1]
    assert "without propensities: 1" in lines[1]
    header = next(line for line in lines if line.split()[:2] == ["engine", "n"])
    assert header.split() == ["engine", "n", "ips", "snips", "dr", "unsupported"]
    first = next(line for line in lines if line.split()[0] == "First")
    assert first.split()[1] == "2"  # n
    assert first.split()[2] == f"{logged.FIRST_IPS:.4f}"  # IPS value, then its interval
    random = next(line for line in lines if line.split()[0] == "Random")
    assert random.split()[2] == f"{logged.RANDOM_IPS:.4f}"
    assert "  Untrained: not trained (Missing model in db)" in lines


def test_json_has_the_http_shape_plus_what_was_skipped(cli, log):
    result = cli("evaluate", "--off-policy", "--json", "--target", "First", "--target", "untrained")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["logged"] == 2
    assert report["skipped"] == {"without_propensities": 1, "invalid": 0}
    assert list(report["engines"]) == ["First", "Untrained"]
    first = report["engines"]["First"]
    assert first["ips"]["value"] == pytest.approx(logged.FIRST_IPS)
    assert first["snips"]["value"] == pytest.approx(logged.FIRST_SNIPS)
    low, high = first["dr"]["ci"]
    assert low <= first["dr"]["value"] <= high
    assert first["n"] == 2
    assert report["engines"]["Untrained"] == {
        "ips": None,
        "snips": None,
        "dr": None,
        "status": "not trained",
        "n": 0,
        "unsupported_mass": None,
        "support_unknown": 0,
        "reason": "Missing model in db",
    }


def test_max_logged_limits_the_log(cli, log):
    result = cli("evaluate", "--off-policy", "--json", "--max-logged", "1")

    assert json.loads(result.output)["logged"] == 1


def test_an_unknown_target_is_a_usage_error_naming_it(cli, log):
    result = cli("evaluate", "--off-policy", "--target", "Nope")

    assert result.exit_code == 2
    assert "--target" in result.output and "Nope" in result.output


def test_answers_on_the_seeded_demo_data(cli, app):
    """`flask seed seed`'s sessions are logged by the interest-overlap rule explored by
    Plackett-Luce, with propensities: every one is used; the rule (no model needed) and Random
    are estimated, the rule's pool is replayed from its ranking; untrained engines say why."""
    from recommender.services.seeding import seed_database
    from recommender.store import get_db

    seeded = seed_database(users=60, services=40, sessions=150, seed=3)
    anonymous = get_db().recommendation.count_documents({"user": None})

    result = cli("evaluate", "--off-policy", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["logged"] == seeded.recommendations
    assert report["skipped"] == {"without_propensities": 0, "invalid": 0}
    rule, random = report["engines"]["InterestRule"], report["engines"]["Random"]
    assert rule["status"] == random["status"] == "ok"
    assert random["n"] == seeded.recommendations
    assert rule["n"] == seeded.recommendations - anonymous  # the rule serves logged-in users
    assert rule["support_unknown"] == 0
    for engine in (rule, random):
        for estimator in ("ips", "snips", "dr"):
            low, high = engine[estimator]["ci"]
            assert low <= engine[estimator]["value"] <= high
    assert report["engines"]["NCF"]["status"] == "not trained"
    assert report["engines"]["NCF"]["reason"]


def test_a_failed_engine_makes_the_exit_code_1(cli, log, monkeypatch):
    def broken(self, context, k):
        raise RuntimeError("scores went missing")

    monkeypatch.setattr(logged.First, "recommend", broken)
    result = cli("evaluate", "--off-policy")

    assert result.exit_code == 1
    assert "First: failed (RuntimeError('scores went missing'))" in result.output
