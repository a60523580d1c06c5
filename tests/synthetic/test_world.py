"""The synthetic world: seeded, logged with true propensities, its oracle right, and fair (no
single hand rule is optimal on it)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from scipy.stats import chisquare

from recommender.engines.rl.synthetic import catalogue_dump
from recommender.evaluation.exploration import Exploration, choose, marginals
from recommender.sessions.rewards import REWARD_VALUES, symbol
from recommender.synthetic import World, generate_marketplace, generate_world
from recommender.synthetic.world import (
    LOGGING,
    LOGGING_ENGINE,
    journey_value,
    journey_value_exact,
    leave_factor,
)
from recommender.synthetic.writer import recommendation_document

OFF = Exploration("off")


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(users=1500, services=300, seed=4)


@pytest.fixture(scope="module")
def requests(world):
    return world.requests(3000, seed=4)


def test_same_seed_same_world_requests_and_sessions(world, requests):
    again = generate_world(users=1500, services=300, seed=4)
    assert np.array_equal(again.user_latent, world.user_latent)
    first, second = world.log(requests[:300], seed=1), again.log(requests[:300], seed=1)
    assert first.recommendations == second.recommendations
    assert first.actions == second.actions
    assert world.log(requests[:300], seed=2).actions != first.actions
    other = world.requests(300, seed=5)
    assert [r.visit_id for r in other] != [r.visit_id for r in requests[:300]]


def test_the_same_catalogue_gives_the_same_hidden_world_whatever_its_dump_looks_like(world):
    """RL's pipeline rebuilds a partial dump from the stored catalogue (ids, names, statuses,
    categories, domains, orders; lists in another order): the hidden world must not change."""
    dump = world.dump
    users = {u["id"]: u for u in reversed(dump["users"])}
    services = {s["id"]: s for s in reversed(dump["services"])}
    rebuilt = World(catalogue_dump(users, services))
    order = np.argsort(rebuilt.ids)
    assert np.array_equal(rebuilt.ids[order], np.sort(world.ids))
    by_id = np.argsort(world.ids)
    assert np.allclose(rebuilt.service_latent[order], world.service_latent[by_id])
    assert np.array_equal(rebuilt.fresh[order], world.fresh[by_id])
    user_order = {u["id"]: i for i, u in enumerate(rebuilt.users)}
    rows = [user_order[u["id"]] for u in dump["users"]]
    assert np.allclose(rebuilt.user_latent[rows], world.user_latent)
    assert not np.allclose(World(dump, latent_seed=1).user_latent, world.user_latent)


def test_records_carry_the_logging_policy_and_are_storable(world, requests):
    logged = world.log(requests[:200], seed=3)
    for record, request in zip(logged.recommendations, requests[:200], strict=True):
        policy = record["policy"]
        assert record["engine_version"] == policy["engine"] == LOGGING_ENGINE
        assert policy["exploration"] == {
            "method": "plackett_luce",
            "epsilon": 0.0,
            "temperature": LOGGING.temperature,
            "pool": LOGGING.pool,
        }
        replayed = choose(
            world.logging_scores(request),
            request.k,
            LOGGING,
            np.random.default_rng(policy["seed"]),
        )
        assert request.candidates[replayed.positions].tolist() == record["services"]
        expected = marginals(world.logging_scores(request), request.k, LOGGING)
        shown = world.positions(request, record["services"])
        assert record["propensities"] == pytest.approx(expected[shown, np.arange(len(shown))])
        assert 0 < record["slate_propensity"] <= record["propensities"][0]
        # Full support: every candidate can be shown at every position.
        assert (expected > 0).all()
        recommendation_document(record)  # a valid Recommendation document


def test_realised_position_frequencies_match_recorded_propensities(world, requests):
    request = next(r for r in requests if r.panel == "v1" and len(r.candidates) >= 30)
    draws = 6000
    logged = world.log([request] * draws, seed=11)
    k = request.k
    counts = np.zeros((len(request.candidates), k))
    recorded = np.full((len(request.candidates), k), np.nan)
    for record in logged.recommendations:
        shown = world.positions(request, record["services"])
        counts[shown, np.arange(k)] += 1
        recorded[shown, np.arange(k)] = record["propensities"]
    seen = ~np.isnan(recorded)
    # The recorded propensities are those of the policy (one value per candidate and position).
    truth = marginals(world.logging_scores(request), k, LOGGING)
    assert np.allclose(recorded[seen], truth[seen])
    for j in range(k):
        expected = truth[:, j] * draws
        big = expected >= 5  # any rest pooled into one cell, as a chi-square needs
        observed, wanted = counts[big, j], expected[big]
        if not big.all():
            observed = np.r_[observed, counts[~big, j].sum()]
            wanted = np.r_[wanted, expected[~big].sum()]
        assert chisquare(observed, wanted).pvalue > 1e-3
        # The test has power: uniform propensities are rejected outright.
        assert chisquare(counts[:, j], np.full(len(truth), draws / len(truth))).pvalue < 1e-9


def realised_rewards(recommendations: list[dict], actions: list[dict]) -> np.ndarray:
    """Per recommendation, sum over shown services of the best symbol of the journey started
    by clicking it, computed from the stored payloads with the sessions' reward table."""
    visit = {r["visit_id"]: i for i, r in enumerate(recommendations)}
    reached: dict[str, tuple[int, int]] = {}  # target visit id -> (recommendation, service)
    best: dict[tuple[int, int], float] = defaultdict(float)
    for action in sorted(actions, key=lambda a: a["timestamp"]):
        source = action["source"]
        if source["page_id"] == "/services" and source["visit_id"] in visit:
            key = (visit[source["visit_id"]], source["root"]["resource_id"])
        else:
            key = reached[source["visit_id"]]
        reached[action["target"]["visit_id"]] = key
        value = REWARD_VALUES.get(
            symbol(source["page_id"], action["target"]["page_id"], action["action"]["order"]), 0.0
        )
        best[key] = max(best[key], value)
    totals = np.zeros(len(recommendations))
    for (row, _), value in best.items():
        totals[row] += value
    return totals


def test_oracle_agrees_with_monte_carlo_sessions(world):
    """The rule's greedy slates, logged as sessions: the mean reward read back from the
    payloads matches the oracle's exact expectation; a wrong oracle (no position bias, or
    journeys worth only the click) would be far outside the tolerance."""
    requests = world.requests(12_000, seed=21)
    scores = [world.logging_scores(r) for r in requests]
    logged = world.log(requests, seed=21, exploration=OFF, scores=scores)
    realised = realised_rewards(logged.recommendations, logged.actions)
    assert np.allclose(realised, logged.rewards)  # the world's own tally agrees
    slates = [r["services"] for r in logged.recommendations]
    exact = world.expected_reward(requests, slates)
    tolerance = 4 * realised.std(ddof=1) / np.sqrt(len(realised))
    assert abs(realised.mean() - exact.mean()) < tolerance
    no_bias = sum(
        (world.attraction(r) * world.click_values(r))[world.positions(r, s)].sum()
        for r, s in zip(requests, slates, strict=True)
    ) / len(requests)
    assert abs(no_bias - realised.mean()) > 3 * tolerance
    click_only = sum(
        (world.click_probabilities(r) * 0.3)[world.positions(r, s), np.arange(len(s))].sum()
        for r, s in zip(requests, slates, strict=True)
    ) / len(requests)
    assert abs(click_only - realised.mean()) > 3 * tolerance


def test_journey_value_table_matches_the_exact_chain():
    affinities = np.random.default_rng(0).uniform(-0.5, 1.0, 200)
    exact = journey_value_exact(leave_factor(affinities))
    assert np.abs(journey_value(affinities) - exact).max() < 1e-6
    # A click is worth at least its mild interest; closer visitors go further.
    assert (exact >= 0.3).all()
    assert journey_value(np.array([0.9]))[0] > journey_value(np.array([0.0]))[0] + 0.1


def test_no_single_hand_rule_is_optimal(world, requests):
    def greedy(score) -> np.ndarray:
        slates = [r.candidates[np.argsort(-score(r), kind="stable")[: r.k]] for r in requests]
        return world.expected_reward(requests, slates).mean()

    rng = np.random.default_rng(0)
    value = {
        "oracle": world.expected_reward(requests, [world.best_slate(r) for r in requests]).mean(),
        "rule": greedy(world.logging_scores),
        "popularity": greedy(lambda r: world.popularity[r.rows] - 1e-9 * r.candidates),
        "random": greedy(lambda r: rng.random(len(r.rows))),
        "affinity": greedy(world.affinity),
    }
    # The rule is a real baseline ...
    assert value["rule"] > 1.15 * value["random"]
    assert value["rule"] > 1.05 * value["popularity"]
    # ... far from optimal: the hidden interests are worth much more than declared ones ...
    assert value["oracle"] > 1.5 * value["rule"]
    # ... and they are not everything either: popularity, freshness and position count.
    assert value["oracle"] > 1.05 * value["affinity"] > 1.05 * value["rule"]


def test_sessions_of_generate_sessions_come_from_the_world():
    dump = generate_marketplace(users=200, services=60, seed=8)
    from recommender.synthetic import generate_sessions

    recommendations, actions = generate_sessions(dump, sessions=150, seed=8)
    world = World(dump)
    logged = world.log(world.requests(150, seed=8), seed=8)
    assert recommendations == logged.recommendations and actions == logged.actions
    assert all(len(r["propensities"]) == len(r["services"]) for r in recommendations)
