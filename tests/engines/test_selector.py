"""The registry order and the engine selector's rules (with stand-in model engines)."""

from __future__ import annotations

import os

import pytest

from recommender.engines import registry
from recommender.engines.base.engine import Engine, EngineResult
from recommender.engines.random.engine import Random, RandomRanking


class Stub(Engine):
    def __init__(self, name: str, ready: bool, ranking: bool = False, needs_user: bool = True):
        self.name, self._ready, self.ranking, self.needs_user = name, ready, ranking, needs_user

    def is_ready(self):
        return (self._ready, None if self._ready else "Missing model in db")

    def recommend(self, context, k):
        return EngineResult.empty()


def install(monkeypatch, ncf=True, rl=True, ncf_ranking=True, popularity=True) -> None:
    engines = [
        Stub("NCF", ncf),
        Stub("RL", rl),
        Random(),
        Stub("NCFRanking", ncf_ranking, ranking=True),
        RandomRanking(),
        Stub("Popularity", popularity, needs_user=False),
    ]
    monkeypatch.setattr(registry, "_engines", {e.name: e for e in engines})


@pytest.fixture(autouse=True)
def no_default(monkeypatch, tmp_path):
    monkeypatch.delenv("DEFAULT_RECOMMENDATION_ALG", raising=False)
    monkeypatch.setattr(registry, "default_algorithm", registry.DefaultAlgorithm(tmp_path / ".env"))


def chosen(requested=None, anonymous=False) -> tuple[str, bool]:
    choice = next(registry.select(requested, anonymous))
    return choice.engine.name, choice.ranking


def names(requested=None, anonymous=False) -> list[str]:
    return [c.engine.name for c in registry.candidates(requested, anonymous)]


def test_registered_engines_follow_the_registry_order():
    assert registry.ORDER == ("NCF", "RL", "Random", "NCFRanking", "RandomRanking", "Popularity")
    order = list(registry.engines())
    assert order == sorted(order, key=registry.ORDER.index)
    assert {"Random", "RandomRanking", "Popularity"} <= set(order)


def test_every_engine_implements_the_interface(app):
    for name, engine in registry.engines().items():
        assert isinstance(engine, Engine) and engine.name == name
        assert isinstance(engine.is_ready(), tuple)


def test_requested_then_default_then_registry_order(monkeypatch):
    install(monkeypatch)
    assert names() == ["NCF", "RL", "Random", "Popularity"]
    assert names("RL") == ["RL", "NCF", "Random", "Popularity"]
    assert chosen("RL") == ("RL", False)
    assert chosen("rl") == ("RL", False)
    assert chosen("Random") == ("Random", False)
    assert chosen("nonsense") == ("NCF", False)


def test_engines_without_a_model_are_skipped(monkeypatch):
    install(monkeypatch, ncf=False)
    assert chosen() == ("RL", False)
    install(monkeypatch, ncf=False, rl=False)
    assert chosen("RL") == ("Random", False)


@pytest.mark.parametrize("requested", ["NCFRanking", "RandomRanking"])
def test_ranking_requests_only_get_rankings(monkeypatch, requested):
    install(monkeypatch)
    assert all(registry.find(n).ranking for n in names(requested))
    install(monkeypatch, ncf_ranking=False)
    assert chosen(requested) == ("RandomRanking", True)


def test_ncf_ranking_falls_back_to_random_ranking_never_to_top_k(monkeypatch):
    install(monkeypatch, ncf_ranking=False)
    assert chosen("NCFRanking") == ("RandomRanking", True)
    install(monkeypatch)
    assert chosen("NCFRanking") == ("NCFRanking", True)


def test_anonymous_users_get_popularity_then_random(monkeypatch):
    install(monkeypatch)
    assert chosen(anonymous=True) == ("Popularity", False)
    assert chosen("RL", anonymous=True) == ("Popularity", False)
    assert chosen("Random", anonymous=True) == ("Popularity", False)
    assert chosen("NCFRanking", anonymous=True) == ("Popularity", True)
    assert chosen("RandomRanking", anonymous=True) == ("Popularity", True)
    install(monkeypatch, popularity=False)
    assert chosen(anonymous=True) == ("Random", False)
    assert chosen("NCFRanking", anonymous=True) == ("RandomRanking", True)


def test_engines_needing_a_user_are_never_offered_to_anonymous_users(monkeypatch):
    install(monkeypatch)
    for requested in (None, "NCF", "RL", "NCFRanking", "RandomRanking"):
        assert not any(registry.find(n).needs_user for n in names(requested, anonymous=True))


@pytest.mark.parametrize("value", ["rl", "RL", "Rl"])
def test_default_algorithm_is_matched_case_insensitively(monkeypatch, value):
    install(monkeypatch)
    monkeypatch.setenv("DEFAULT_RECOMMENDATION_ALG", value)
    assert chosen() == ("RL", False)
    assert chosen("NCF") == ("NCF", False)  # a request still wins


def test_a_ranking_default_makes_a_ranking(monkeypatch):
    install(monkeypatch, ncf_ranking=False)
    monkeypatch.setenv("DEFAULT_RECOMMENDATION_ALG", "ncfranking")
    assert chosen() == ("RandomRanking", True)


def test_default_algorithm_is_reread_from_dotenv_when_it_changes(monkeypatch, tmp_path):
    install(monkeypatch)
    dotenv = tmp_path / ".env"
    dotenv.write_text("DEFAULT_RECOMMENDATION_ALG=rl\n")
    default = registry.DefaultAlgorithm(dotenv)
    monkeypatch.setattr(registry, "default_algorithm", default)
    assert chosen() == ("RL", False)
    dotenv.write_text("OTHER=1\nDEFAULT_RECOMMENDATION_ALG=random\n")
    os.utime(dotenv, ns=(1, 1))  # a new modification time, whatever the clock resolution
    assert chosen() == ("Random", False)


def test_an_edited_dotenv_wins_over_the_value_copied_at_start(monkeypatch, tmp_path):
    install(monkeypatch)
    dotenv = tmp_path / ".env"
    dotenv.write_text("DEFAULT_RECOMMENDATION_ALG=NCF\n")
    monkeypatch.setenv("DEFAULT_RECOMMENDATION_ALG", "NCF")  # as load_dotenv left it
    monkeypatch.setattr(registry, "default_algorithm", registry.DefaultAlgorithm(dotenv))
    assert chosen() == ("NCF", False)
    dotenv.write_text("DEFAULT_RECOMMENDATION_ALG=RL\n")
    os.utime(dotenv, ns=(2, 2))
    assert chosen() == ("RL", False)


def test_without_any_default_ncf_is_preferred(monkeypatch):
    install(monkeypatch)
    assert registry.default_algorithm.get() == "NCF"
    assert chosen() == ("NCF", False)
