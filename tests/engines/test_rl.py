"""The RL engine: TD3 mechanics, masked selection, training + promotion, serving."""

from __future__ import annotations

import copy
import datetime as dt

import numpy as np
import pytest
import torch

from recommender.engines.autoencoders.model import TrainConfig
from recommender.engines.autoencoders.pipeline import AEConfig, AEPipeline, train_embeddings
from recommender.engines.base.engine import RecommendationContext
from recommender.engines.base.pipeline import ModelValidationError
from recommender.engines.rl.data import Transitions
from recommender.engines.rl.networks import Actor, Shape, polyak
from recommender.engines.rl.pipeline import RLConfig, RLPipeline
from recommender.engines.rl.selection import choose
from recommender.engines.rl.synthetic import synthetic_sarses
from recommender.engines.rl.td3 import TD3, Batch, Matrices, TD3Config, fit
from recommender.models.marketplace import RECOMMENDABLE_STATUSES, Service
from recommender.models.ops import ModelVersion, PipelineMetadata
from recommender.services.runtime import runtime
from recommender.sessions import regenerate_sarses
from recommender.store import get_db, stamps
from recommender.synthetic import generate_marketplace, generate_sessions
from recommender.synthetic.writer import write_marketplace, write_sessions
from tests import snapshots
from tests.app_helpers import engine, env

SHAPE = Shape(k=2, user_dim=3, service_dim=4, history_len=2, history_dim=5, hidden=(8, 8))
FAST_AE = AEConfig(train=TrainConfig(max_epochs=20, patience=3))
TINY = RLConfig(
    min_real_sarses=10**9, synthetic_sessions=500, td3=TD3Config(epochs=3, batch_size=64)
)


# --- TD3 mechanics on a tiny MDP --------------------------------------------------------


def tiny_batch(done: float, n: int = 6, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    unit = lambda *shape: torch.nn.functional.normalize(torch.randn(*shape, generator=g), dim=-1)  # noqa: E731
    return Batch(
        user=torch.randn(n, SHAPE.user_dim, generator=g),
        history=unit(n, SHAPE.history_len, SHAPE.service_dim),
        action=unit(n, SHAPE.k, SHAPE.service_dim),
        reward=torch.rand(n, generator=g),
        values=torch.rand(n, SHAPE.k, generator=g),
        next_history=unit(n, SHAPE.history_len, SHAPE.service_dim),
        done=torch.full((n,), done),
    )


def agent(**config) -> TD3:
    torch.manual_seed(0)
    return TD3(SHAPE, TD3Config(**config), torch.device("cpu"))


def perturb(module: torch.nn.Module, by: float = 0.5) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.add_(by)


def test_terminal_targets_are_the_rewards():
    td3, batch = agent(), tiny_batch(done=1.0)

    y = td3.targets(batch, torch.Generator().manual_seed(1))

    torch.testing.assert_close(y, batch.values)


def test_targets_bootstrap_from_the_target_critics_not_the_online_ones():
    td3, batch = agent(gamma=0.9), tiny_batch(done=0.0)
    y = td3.targets(batch, torch.Generator().manual_seed(1))

    # Expected: the target actor's action with the same clipped noise, min of target critics.
    with torch.no_grad():
        a = td3.target_actor(batch.user, batch.next_history)
        a = torch.nn.functional.normalize(
            a + td3.noise(a, torch.Generator().manual_seed(1)), dim=-1
        )
        q = torch.minimum(
            td3.target_q1(batch.user, batch.next_history, a),
            td3.target_q2(batch.user, batch.next_history, a),
        )
    torch.testing.assert_close(y, batch.values + 0.9 * q.unsqueeze(1))

    perturb(td3.q1), perturb(td3.q2), perturb(td3.actor)  # online nets: no effect
    torch.testing.assert_close(td3.targets(batch, torch.Generator().manual_seed(1)), y)
    perturb(td3.target_q1), perturb(td3.target_q2)
    assert not torch.allclose(td3.targets(batch, torch.Generator().manual_seed(1)), y)


def test_smoothing_noise_is_clipped():
    td3 = agent(target_noise=10.0, noise_clip=0.5)
    noise = td3.noise(torch.zeros(1000, SHAPE.k, SHAPE.service_dim), torch.Generator())

    assert noise.abs().max() <= 0.5 / SHAPE.service_dim**0.5 + 1e-7
    assert noise.std() > 0


def test_the_actor_and_targets_move_only_every_policy_delay_steps():
    td3, batch = agent(policy_delay=2, polyak=0.5), tiny_batch(done=0.0, n=16)
    actor, target = copy.deepcopy(td3.actor.state_dict()), copy.deepcopy(td3.target_q1.state_dict())
    generator = torch.Generator().manual_seed(0)

    _, actor_loss = td3.step(batch, generator)
    assert actor_loss is None
    assert all(torch.equal(v, td3.actor.state_dict()[k]) for k, v in actor.items())
    assert all(torch.equal(v, td3.target_q1.state_dict()[k]) for k, v in target.items())

    _, actor_loss = td3.step(batch, generator)
    assert actor_loss is not None
    assert not all(torch.equal(v, td3.actor.state_dict()[k]) for k, v in actor.items())
    assert not all(torch.equal(v, td3.target_q1.state_dict()[k]) for k, v in target.items())


def test_polyak_averages_parameters_and_batchnorm_buffers():
    online, target = Actor(SHAPE), Actor(SHAPE)
    online.train()
    online(torch.randn(32, SHAPE.user_dim) + 3.0, torch.randn(32, SHAPE.history_len, 4))
    before = copy.deepcopy(target.state_dict())

    polyak(target, online, keep=0.75)

    after, now = target.state_dict(), online.state_dict()
    for name in ("body.1.running_mean", "body.1.running_var", "head.weight"):
        torch.testing.assert_close(after[name], 0.75 * before[name] + 0.25 * now[name])
    assert after["body.1.num_batches_tracked"] == now["body.1.num_batches_tracked"] == 1


def tiny_transitions(n: int = 40, seed: int = 0) -> tuple[Transitions, Matrices]:
    rng = np.random.default_rng(seed)
    services = torch.nn.functional.normalize(torch.randn(11, SHAPE.service_dim), dim=-1)
    services[0] = 0
    users = torch.randn(6, SHAPE.user_dim)
    users[0] = 0
    long = lambda *shape, high: torch.from_numpy(rng.integers(0, high, shape))  # noqa: E731
    values = torch.from_numpy(rng.random((n, SHAPE.k)).astype(np.float32))
    data = Transitions(
        user=long(n, high=6),
        history=long(n, SHAPE.history_len, high=11),
        action=long(n, SHAPE.k, high=11),
        reward=values.mean(1),
        values=values,
        next_history=long(n, SHAPE.history_len, high=11),
        done=torch.from_numpy((rng.random(n) < 0.3).astype(np.float32)),
    )
    return data, Matrices(users, services)


def test_training_is_seeded():
    data, matrices = tiny_transitions()
    config = TD3Config(epochs=2, batch_size=8)
    first = fit(data, matrices, SHAPE, config, seed=7, device=torch.device("cpu"))
    second = fit(data, matrices, SHAPE, config, seed=7, device=torch.device("cpu"))
    other = fit(data, matrices, SHAPE, config, seed=8, device=torch.device("cpu"))

    for name, value in first.actor.state_dict().items():
        assert torch.equal(value, second.actor.state_dict()[name])
    assert not torch.equal(first.actor.head.weight, other.actor.head.weight)
    assert len(first.critic_losses) == len(first.actor_losses) == 2


# --- masked selection -------------------------------------------------------------------


def test_a_masked_service_never_wins_and_the_k_picks_are_distinct():
    features = np.eye(4, dtype=np.float32)
    weights = np.array([[[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 0, 0]]], dtype=np.float32)
    allowed = np.array([[False, True, True, True]])  # the best match for every head is masked

    columns, scores = choose(weights, features, allowed, k=3)

    assert columns[0, 0] != 0 and 0 not in columns[0]
    assert len(set(columns[0].tolist())) == 3
    assert ((scores >= 0) & (scores <= 1)).all()


def test_fewer_allowed_services_than_k_leave_empty_slots():
    features = np.eye(3, dtype=np.float32)
    weights = np.ones((2, 3, 3), dtype=np.float32)
    allowed = np.array([[True, False, False], [False, False, False]])

    columns, scores = choose(weights, features, allowed, k=3)

    assert columns.tolist() == [[0, -1, -1], [-1, -1, -1]]
    assert scores[columns < 0].tolist() == [0.0] * 5


# --- training, evaluation and promotion --------------------------------------------------


def embedded_marketplace() -> dict:
    """A small synthetic Marketplace with live autoencoders and embeddings."""
    dump = generate_marketplace(users=60, services=40, seed=3)
    write_marketplace(dump)
    assert AEPipeline(FAST_AE).run(env(), seed=3).status == "promoted"
    assert train_embeddings(env(), seed=3).status == "promoted"
    return dump


@pytest.fixture(scope="module")
def world_snapshot():
    """Built once for the module: the marketplace, and the store before and after RL."""
    with snapshots.own_app():
        dump = embedded_marketplace()
        before = snapshots.take()
        assert AlwaysPromoted(TINY).run(env(), seed=3).status == "promoted"
        return dump, before, snapshots.take()


@pytest.fixture
def world(app, world_snapshot) -> dict:
    dump, before, _ = world_snapshot
    snapshots.restore(before)
    return dump


def test_rl_is_skipped_without_embeddings(app):
    assert RLPipeline(TINY).run(env(), seed=1).status == "skipped"


def test_rl_trains_on_synthetic_sessions_and_a_failed_gate_keeps_it_out_with_the_numbers(world):
    # A margin no model can meet: the gate must reject, whatever training learned.
    unbeatable = RLConfig(**{**TINY.__dict__, "popularity_margin": -10.0})
    outcome = RLPipeline(unbeatable).run(env(), seed=3)

    metadata = PipelineMetadata.objects(pipeline="RL").order_by("-id").first()
    steps = {step.name: step for step in metadata.steps}
    assert steps["extract"].details["source"] == "synthetic"
    [model] = ModelVersion.objects(name="rl")
    for panel, k in (("v1", 3), ("v2", 2)):
        numbers = steps["evaluate"].details[panel]
        assert numbers["sessions"] > 0
        for name in ("rl", "popularity", "random", "logged"):
            assert 0.0 <= numbers[name]["reward"] <= 1.0
            assert 0.0 <= numbers[name][f"hr@{k}"] <= 1.0
        assert model.metrics[panel] == numbers  # the numbers go with the model version
    assert outcome.status == "rejected" and metadata.status == "rejected"
    assert "RL reward" in outcome.reason and metadata.reason == outcome.reason
    assert model.status == "rejected" and model.metrics["rejection_reason"] == outcome.reason
    assert model.file_id is None  # a rejected candidate keeps no weights


@pytest.mark.parametrize(
    ("rl", "random", "popularity", "reason"),
    [
        (0.30, 0.20, 0.25, None),
        (0.25, 0.25, 0.20, "does not beat Random"),
        (0.22, 0.20, 0.25, "below Popularity"),
    ],
)
def test_promotion_needs_rl_above_random_and_not_below_popularity(rl, random, popularity, reason):
    numbers = {
        "sessions": 10,
        **{
            e: {"reward": r}
            for e, r in zip(("rl", "random", "popularity"), (rl, random, popularity), strict=True)
        },
    }
    metrics = {"v1": numbers, "v2": numbers}
    pipeline = RLPipeline()
    if reason is None:
        pipeline.validate_model(None, metrics, None)
    else:
        with pytest.raises(ModelValidationError, match=reason):
            pipeline.validate_model(None, metrics, None)


def test_rl_trains_on_stored_traffic_when_there_is_enough(world, client):
    recommendations, actions = generate_sessions(world, 400, seed=5)
    write_sessions(recommendations, actions)
    config = RLConfig(min_real_sarses=100, td3=TD3Config(epochs=2, batch_size=64))

    outcome = AlwaysPromoted(config).run(env(), seed=3)  # about the data source, not quality

    metadata = PipelineMetadata.objects(pipeline="RL").order_by("-id").first()
    extract = metadata.steps[0].details
    assert extract["source"] == "real" and extract["real_sarses"] == extract["sarses"] == 400
    assert extract["regeneration"]["recommendations"] == 400
    assert outcome.status == metadata.status == "promoted"
    assert ModelVersion.objects(name="rl", status="live").first().config["source"] == "real"


def test_rl_trains_after_ncf_and_before_popularity(app):
    names = [stage.name for stage in runtime().engines.stages()]
    assert names.index("ncf") < names.index("rl") < names.index("popularity")


# --- serving ------------------------------------------------------------------------------


class AlwaysPromoted(RLPipeline):
    """Serving tests need a live model whatever its quality on a tiny catalogue."""

    def validate_model(self, model, metrics, ctx) -> None:
        return None


@pytest.fixture
def served(app, world_snapshot) -> dict:
    dump, _, after = world_snapshot
    snapshots.restore(after)
    return dump


def recommendable(dump: dict) -> list[int]:
    return [s["id"] for s in dump["services"] if s["status"] in RECOMMENDABLE_STATUSES]


def ask(client, user_id, candidates, panel="v1") -> dict:
    response = client.post(
        "/recommendations",
        json={
            "user_id": user_id,
            "unique_id": "5642c351-80fe-44cf-b606-304f2f338122",
            "timestamp": "2024-02-21T15:19:43.512+0100",
            "visit_id": "6642c351-80fe-44cf-b606-304f2f338122",
            "page_id": "/services",
            "panel_id": panel,
            "engine_version": "RL",
            "candidates": candidates,
            "search_data": {},
            "client_id": "user_dashboard",
        },
    )
    assert response.status_code == 200, response.json
    return response.json


@pytest.mark.parametrize(("panel", "k"), [("v1", 3), ("v2", 2)])
def test_rl_serves_k_distinct_eligible_services(served, client, panel, k):
    user = next(u for u in served["users"] if len(u["accessed_services"]) >= 2)
    candidates = recommendable(served)

    answer = ask(client, user["id"], candidates, panel)

    assert answer["engine_version"] == "RL" and answer["panel_id"] == panel
    chosen = answer["recommendations"]
    assert len(chosen) == len(set(chosen)) == k
    assert set(chosen) <= set(candidates) - set(user["accessed_services"])
    assert all(0.0 <= score <= 1.0 for score in answer["scores"])
    assert len(answer["explanations"]) == len(answer["explanations_short"]) == k


def test_anonymous_visitors_are_not_served_by_rl(served, client):
    assert ask(client, "", recommendable(served))["engine_version"] != "RL"


def test_services_added_after_training_are_recommended_by_their_features(served, client):
    template = next(s for s in served["services"] if s["status"] == "published")
    fresh = [
        {
            "_id": 90_000 + i,
            "name": f"New service {i}",
            "status": "published",
            "categories": template["categories"],
            "scientific_domains": template["scientific_domains"],
        }
        for i in range(3)
    ]
    get_db()[Service._get_collection_name()].insert_many(fresh)
    stamps.bump(stamps.CATALOGUE)
    user = served["users"][0]["id"]

    answer = ask(client, user, [doc["_id"] for doc in fresh])

    assert answer["engine_version"] == "RL"
    assert sorted(answer["recommendations"]) == [90_000, 90_001, 90_002]
    rows = engine("RL").component().service_rows(np.array([90_000]))
    assert np.linalg.norm(rows) == pytest.approx(1.0, abs=1e-5)  # encoded, not a zero row


def test_a_request_is_one_forward_pass_on_a_cached_component(served):
    component = engine("RL").component()
    assert engine("RL").component() is component  # built once per model version
    calls = []
    hook = component.actor(3).register_forward_hook(lambda *args: calls.append(1))
    context = RecommendationContext(
        candidates=np.array(recommendable(served), dtype=np.int64),
        user_id=served["users"][0]["id"],
        accessed_services=tuple(served["users"][0]["accessed_services"]),
        timestamp=dt.datetime(2024, 1, 1),
    )
    try:
        result = engine("RL").recommend(context, 3)
    finally:
        hook.remove()

    assert calls == [1] and len(result.services) == 3


def test_health_reports_the_rl_engine_and_its_version(served, client):
    body = client.get("/health").json

    assert body["recommender_engines"]["RL"]["status"] == "UP"
    assert body["training"]["model_versions"]["rl"] == engine("RL").model_version() == 1


def test_synthetic_sessions_become_the_sars_their_stored_traffic_would(world):
    """The in-memory synthetic path and the stored path (the API's documents) agree."""
    recommendations, actions = generate_sessions(world, 150, seed=9)
    users = {u["id"]: u for u in world["users"]}
    services = {s["id"]: s for s in world["services"]}
    in_memory, _ = synthetic_sarses(150, 9, users, services)
    write_sessions(recommendations, actions)
    regenerate_sarses()

    def key(sars: dict) -> tuple:
        return (
            tuple(sars["action"]),
            tuple(sars["state"]["services_history"]),
            tuple(tuple(r) for r in sars["reward"]),
            sars["terminal"],
        )

    stored = list(get_db()["sars"].find({}, {"_id": 0}))
    assert len(stored) == len(in_memory) == len(recommendations)
    assert sorted(map(key, stored)) == sorted(map(key, in_memory))
    assert any(any(r) for sars in in_memory for r in sars["reward"])
