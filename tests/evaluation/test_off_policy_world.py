"""The off-policy report against the synthetic world's truth: sessions logged by the world's
stochastic policy (the interest-overlap rule explored by Plackett-Luce) and stored; the report's
95% intervals for Random and the rule (greedy) hold the world's true expected reward per
request, computed by its oracle for the same requests (evaluation only)."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.services.off_policy import build_logged, off_policy_report, read_logged
from recommender.services.runtime import runtime
from recommender.synthetic import World, generate_marketplace
from recommender.synthetic.writer import write_marketplace, write_sessions

USERS, SERVICES, SESSIONS, SEED = 300, 100, 1500, 2


@pytest.fixture
def world(app) -> tuple[World, dict]:
    dump = generate_marketplace(users=USERS, services=SERVICES, seed=SEED)
    write_marketplace(dump)
    world = World(dump)
    requests = world.requests(SESSIONS, SEED)
    logged = world.log(requests, SEED)
    write_sessions(logged.recommendations, logged.actions)
    return world, {request.visit_id: request for request in requests}


def true_values(world: World, requests: dict) -> tuple[float, float]:
    """(Random's, the rule's on logged-in visitors') true expected reward per request."""
    catalogue, rule = runtime().catalogue(), runtime().engines.find("InterestRule").engine
    random, greedy = [], []
    for doc in read_logged(SESSIONS)[0]:
        request = requests[doc["visit_id"]]
        random.append(world.reward_matrix(request)[:, : request.k].mean(axis=0).sum())
        if doc.get("user") is not None:
            item = build_logged(doc, catalogue)
            slate = rule.recommend(item.context, item.k).services
            greedy.append(world.expected_reward([request], [slate])[0])
    return float(np.mean(random)), float(np.mean(greedy))


def test_the_intervals_hold_the_worlds_true_rewards(world):
    report = off_policy_report(["Random", "InterestRule"], max_logged=SESSIONS, fresh=True)
    random, rule = true_values(*world)

    assert report.logged == SESSIONS
    for name, truth in (("Random", random), ("InterestRule", rule)):
        engine = report.engines[name]
        assert engine.unsupported_mass == 0.0  # the world's pool covers every candidate
        for estimator, estimate in engine.estimates.items():
            assert estimate.ci_low <= truth <= estimate.ci_high, (name, estimator, truth)
