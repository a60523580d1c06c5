"""The registry and the selector's rules, on stand-in engines: no app, no database."""

from __future__ import annotations

import os

import pytest

from recommender.engines.base.engine import ServingDeps
from recommender.engines.registry import ConfigurationError, DefaultAlgorithm, Registry
from recommender.settings import Settings
from tests.engines import stubs

# The stub specs' served names, in a fallback order like the default ENGINES.
ENGINES = ("NCF", "RL", "Random", "NCFRanking", "RandomRanking", "Popularity")


@pytest.fixture(autouse=True)
def no_default(monkeypatch):
    monkeypatch.delenv("DEFAULT_RECOMMENDATION_ALG", raising=False)
    stubs.READY.clear()


def registry(tmp_path, enabled=ENGINES, **ready) -> Registry:
    stubs.READY.clear()
    stubs.READY.update(ready)
    deps = ServingDeps(Settings(), models=None, catalogue=None)
    return Registry(stubs.SPECS, enabled, deps, DefaultAlgorithm(tmp_path / ".env"))


def chosen(engines: Registry, requested=None, anonymous=False) -> tuple[str, bool]:
    choice = next(engines.select(requested, anonymous))
    return choice.name, choice.ranking


def names(engines: Registry, requested=None, anonymous=False) -> list[str]:
    return [c.name for c in engines.candidates(requested, anonymous)]


def test_served_names_follow_the_engines_setting(tmp_path):
    engines = registry(tmp_path)
    assert list(engines.served) == list(ENGINES)
    assert engines.find("ncfranking").ranking and not engines.find("NCF").ranking
    assert engines.find(" ncf ").engine is engines.find("NCFRanking").engine  # one engine
    assert list(registry(tmp_path, ("Random", "NCF")).served) == ["Random", "NCF"]


@pytest.mark.parametrize("enabled", [("NCF", "Nope"), ("NCF", "ncf")])
def test_unknown_or_repeated_names_are_refused_at_start(tmp_path, enabled):
    with pytest.raises(ConfigurationError):
        registry(tmp_path, enabled)


def test_requested_then_default_then_setting_order(tmp_path):
    engines = registry(tmp_path)
    assert names(engines) == ["NCF", "RL", "Random", "Popularity"]
    assert names(engines, "RL") == ["RL", "NCF", "Random", "Popularity"]
    assert chosen(engines, "RL") == ("RL", False)
    assert chosen(engines, "rl") == ("RL", False)
    assert chosen(engines, "Random") == ("Random", False)
    assert chosen(engines, "nonsense") == ("NCF", False)


def test_engines_without_a_model_are_skipped(tmp_path):
    assert chosen(registry(tmp_path, ncf=False)) == ("RL", False)
    assert chosen(registry(tmp_path, ncf=False, rl=False), "RL") == ("Random", False)


@pytest.mark.parametrize("requested", ["NCFRanking", "RandomRanking"])
def test_ranking_requests_only_get_rankings(tmp_path, requested):
    engines = registry(tmp_path)
    assert all(engines.find(n).ranking for n in names(engines, requested))
    assert chosen(registry(tmp_path, ncf=False), requested) == ("RandomRanking", True)


def test_ncf_ranking_falls_back_to_random_ranking_never_to_top_k(tmp_path):
    assert chosen(registry(tmp_path, ncf=False), "NCFRanking") == ("RandomRanking", True)
    assert chosen(registry(tmp_path), "NCFRanking") == ("NCFRanking", True)


def test_anonymous_users_get_popularity_then_random(tmp_path):
    engines = registry(tmp_path)
    assert chosen(engines, anonymous=True) == ("Popularity", False)
    assert chosen(engines, "RL", anonymous=True) == ("Popularity", False)
    assert chosen(engines, "Random", anonymous=True) == ("Popularity", False)
    assert chosen(engines, "NCFRanking", anonymous=True) == ("Popularity", True)
    assert chosen(engines, "RandomRanking", anonymous=True) == ("Popularity", True)
    untrained = registry(tmp_path, popularity=False)
    assert chosen(untrained, anonymous=True) == ("Random", False)
    assert chosen(untrained, "NCFRanking", anonymous=True) == ("RandomRanking", True)


def test_engines_needing_a_user_are_never_offered_to_anonymous_users(tmp_path):
    engines = registry(tmp_path)
    for requested in (None, "NCF", "RL", "NCFRanking", "RandomRanking"):
        assert all(engines.find(n).anonymous for n in names(engines, requested, anonymous=True))


@pytest.mark.parametrize("value", ["rl", "RL", "Rl"])
def test_default_algorithm_is_matched_case_insensitively(tmp_path, monkeypatch, value):
    engines = registry(tmp_path)
    monkeypatch.setenv("DEFAULT_RECOMMENDATION_ALG", value)
    assert chosen(engines) == ("RL", False)
    assert chosen(engines, "NCF") == ("NCF", False)  # a request still wins


def test_a_ranking_default_makes_a_ranking(tmp_path, monkeypatch):
    engines = registry(tmp_path, ncf=False)
    monkeypatch.setenv("DEFAULT_RECOMMENDATION_ALG", "ncfranking")
    assert chosen(engines) == ("RandomRanking", True)


def test_default_algorithm_is_reread_from_dotenv_when_it_changes(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DEFAULT_RECOMMENDATION_ALG=rl\n")
    engines = registry(tmp_path)
    assert chosen(engines) == ("RL", False)
    dotenv.write_text("OTHER=1\nDEFAULT_RECOMMENDATION_ALG=random\n")
    os.utime(dotenv, ns=(1, 1))  # a new modification time, whatever the clock resolution
    assert chosen(engines) == ("Random", False)


def test_an_edited_dotenv_wins_over_the_value_copied_at_start(tmp_path, monkeypatch):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DEFAULT_RECOMMENDATION_ALG=NCF\n")
    monkeypatch.setenv("DEFAULT_RECOMMENDATION_ALG", "NCF")  # as load_dotenv left it
    engines = registry(tmp_path)
    assert chosen(engines) == ("NCF", False)
    dotenv.write_text("DEFAULT_RECOMMENDATION_ALG=RL\n")
    os.utime(dotenv, ns=(2, 2))
    assert chosen(engines) == ("RL", False)


def test_without_any_default_the_setting_value_is_preferred(tmp_path):
    engines = registry(tmp_path, ncf=True)
    assert engines.default_algorithm.get() == "Auto"  # DEFAULT_RECOMMENDATION_ALG's default
    assert chosen(engines) == ("NCF", False)  # the stubs serve no Auto: the ENGINES order
