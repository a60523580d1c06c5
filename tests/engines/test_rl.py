"""The RL engine: candidate features, actor-critic mechanics, splits, training + the gate,
serving."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import torch

from recommender.engines.autoencoders.model import TrainConfig
from recommender.engines.autoencoders.pipeline import AEConfig, AEPipeline, train_embeddings
from recommender.engines.base.engine import RecommendationContext
from recommender.engines.base.pipeline import ModelValidationError
from recommender.engines.rl.candidates import (
    FEATURES,
    RULE_PRIOR,
    ServiceTable,
    States,
    Tallies,
    candidate_features,
    log_popularity,
    overlap_counts,
    scores,
    state_vector,
    value_rates,
)
from recommender.engines.rl.data import Requests, SarsSet, UserSpace, split, value_sums
from recommender.engines.rl.evaluation import actor_scores
from recommender.engines.rl.networks import Actor, Shape, average
from recommender.engines.rl.pipeline import Choice, Raw, RLConfig, RLPipeline, serving_statistics
from recommender.engines.rl.prior import PENALTIES, fitted_prior, shown_examples
from recommender.engines.rl.synthetic import synthetic_sarses
from recommender.engines.rl.training import (
    Agent,
    AgentConfig,
    actor_shape,
    fit,
    logged_q,
    position_marginals,
    untrained_actor,
)
from recommender.engines.rule.scoring import rule_scores
from recommender.evaluation import exploration
from recommender.models.marketplace import RECOMMENDABLE_STATUSES, Service
from recommender.models.ops import ModelVersion, PipelineMetadata
from recommender.services.runtime import runtime
from recommender.sessions import regenerate_sarses
from recommender.store import get_db, stamps
from recommender.synthetic import generate_marketplace, generate_sessions
from recommender.synthetic.writer import write_marketplace, write_sessions
from tests import snapshots
from tests.app_helpers import engine, env

FAST_AE = AEConfig(train=TrainConfig(max_epochs=20, patience=3))
TINY = RLConfig(
    min_real_sarses=10**9,
    synthetic_sessions=500,
    validation_users=0.3,
    agent=AgentConfig(epochs=2, batch_size=64),
    grid=({"imitation": 0.0},),
)


# --- candidate features -------------------------------------------------------------------


def tiny_table() -> ServiceTable:
    """Four services: content embeddings e0, e0, e1, e1; interests {a}, {a, b}, {}, {b}."""
    embeddings = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32)
    interests = np.array([[1, 0], [1, 1], [0, 0], [0, 1]], dtype=np.float32)
    return ServiceTable.build(
        embeddings, interests, np.array([0.1, 0.2, 0.3, 1.0]), np.array([0.5, 0.5, 0.5, 1.0])
    )


def feature(name: str, features: torch.Tensor) -> list[float]:
    return features[0, :, FEATURES.index(name)].tolist()


def test_candidate_features_follow_the_users_interests_and_history():
    table = tiny_table()
    # A user interested in {a} who used service row 1 (embedding e0, interests {a}).
    states = States(torch.zeros(1, 3), torch.tensor([[1.0, 0.0]]), torch.tensor([[0, 1]]))
    candidates = torch.tensor([[2, 3, 4, 0]])  # rows 2..4, then padding

    features = candidate_features(table, states, candidates)

    assert feature("overlap", features) == pytest.approx([1 / 3, 0, 0, 0])
    assert feature("any_overlap", features) == [1, 0, 0, 0]
    assert feature("interest_cosine", features) == pytest.approx([2**-0.5, 0, 0, 0])
    assert feature("history_mean", features) == pytest.approx([1, 0, 0, 0])
    assert feature("history_interests", features) == pytest.approx([2**-0.5, 0, 0, 0])
    assert feature("popularity", features) == pytest.approx([0.2, 0.3, 1.0, 0])
    assert feature("popular_overlap", features) == pytest.approx([0.2, 0, 0, 0])
    assert feature("value_rate", features) == pytest.approx([0.5, 0.5, 1.0, 0])
    assert features[0, 3].abs().sum() == 0  # padding: no features at all


def test_value_rates_shrink_rarely_shown_services_towards_the_mean():
    rates = value_rates(np.array([5.0, 1.0, 0.0]), np.array([10.0, 1.0, 0.0]))
    # mean 6 / 11; shrunk: (5 + 60/11) / 20, (1 + 60/11) / 11, (0 + 60/11) / 10, scaled.
    raw = np.array([(5 + 60 / 11) / 20, (1 + 60 / 11) / 11, (60 / 11) / 10])
    assert rates == pytest.approx(raw / raw.max(), rel=1e-5)


def test_a_training_requests_features_leave_its_own_outcomes_out():
    # Three services counted on the training logs: row 1 clicked (value 1) in its only
    # showing, row 2 shown 5 times and never clicked, row 3 never shown; popularity events
    # 1, 3 and 7 (the click included).
    events, earned, showings = np.array([1.0, 3, 7]), np.array([1.0, 0, 0]), np.array([1.0, 5, 0])
    table = ServiceTable.build(
        np.eye(3, dtype=np.float32),
        np.ones((3, 1), np.float32),
        log_popularity(events),
        value_rates(earned, showings),
    )
    tallies = Tallies.build(events, earned, showings)
    states = States(torch.zeros(1, 3), torch.ones(1, 1), torch.tensor([[0]]))
    candidates = torch.tensor([[1, 2, 3, 0]])
    features = candidate_features(table, states, candidates)

    # The request that showed row 1 (clicked) then row 2 (not clicked).
    own = tallies.held_out(features, candidates, torch.tensor([[0, 1]]), torch.tensor([[1.0, 0]]))
    # A request none of whose services was logged: the table's features as they are.
    other = tallies.held_out(
        features, candidates, torch.tensor([[-1, -1]]), torch.tensor([[0.0, 0]])
    )

    assert torch.allclose(other, features)
    mean = 1 / 6
    top = (1 + 10 * mean) / 11  # the largest rate of the table (row 1's)
    assert feature("value_rate", own) == pytest.approx(
        [mean / top, 10 * mean / 14 / top, mean / top, 0], rel=1e-5
    )
    assert feature("value_rate", own)[0] < feature("value_rate", features)[0]
    popularity = [0.0, np.log1p(3) / np.log1p(7), 1.0, 0]  # row 1's click is its own
    assert feature("popularity", own) == pytest.approx(popularity, rel=1e-5)
    assert feature("popular_overlap", own) == pytest.approx(popularity, rel=1e-5)
    unchanged = [FEATURES.index(n) for n in FEATURES if n not in Tallies.RECOUNTED]
    assert torch.equal(own[..., unchanged], features[..., unchanged])


def test_the_served_statistics_count_the_periods_training_never_saw():
    # Services 1 and 2 shown together ten times; 2 is clicked only in the last two (the test
    # period): training's statistics cannot tell them apart, the served ones can.
    n = 10
    sars = SarsSet(
        users=np.ones(n, np.int64),
        history=[[] for _ in range(n)],
        candidates=[[1, 2, 3] for _ in range(n)],
        actions=[[1, 2] for _ in range(n)],
        values=[np.array([0.0, 1.0 if t >= 8 else 0.0]) for t in range(n)],
        propensities=[np.ones(2, np.float32) for _ in range(n)],
        recorded=np.zeros(n, bool),
        times=np.arange(n, dtype=np.float64),
    )
    ids = np.array([1, 2, 3])
    train = sars.subset(split(sars, 0.0, 0.2, 0.2, seed=0).train)
    raw = Raw(sars, "real", None, {1: {"accessed_services": []}}, {})

    served = serving_statistics(raw, ids)

    trained = value_rates(*value_sums(ids, train))
    assert trained[0] == trained[1]
    assert served["value_rate"][1] > served["value_rate"][0]
    assert served["popularity"][1] > served["popularity"][0] == 0.0


# --- actor-critic mechanics ----------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
def test_position_marginals_are_the_exact_plackett_luce_ones(k):
    logits = torch.tensor([[2.0, 1.0, 0.0, -0.5, -1e9], [0.3, 0.0, -2.0, 1.0, 0.5]])

    marginals = position_marginals(logits, k)

    for row in range(2):
        real = logits[row] > -1e8
        exact = exploration.marginals(
            logits[row][real].double().numpy(),
            k,
            exploration.Exploration("plackett_luce", temperature=1.0, pool=10),
        )
        assert marginals[row][:, real].T.numpy() == pytest.approx(exact, abs=1e-5)
    assert marginals[0, :, 4].abs().max() < 1e-6  # padding


def test_the_untrained_actor_ranks_as_the_interest_overlap_rule():
    table = tiny_table()  # popularity 0.1, 0.2, 0.3, 1.0
    # Interested in {a, b}: shares 1, 2, 0 and 1 interests with rows 1..4, so the rule ranks
    # row 2 first, then row 4 before row 1 (same overlap, more popular), row 3 last; a
    # popularity weight like the overlap's would put row 4 first.
    states = States(torch.zeros(1, 3), torch.tensor([[1.0, 1.0]]), torch.zeros(1, 2).long())
    candidates = torch.tensor([[1, 2, 3, 4]])
    state = state_vector(table, states)
    actor = Actor(Shape(2, state.shape[1], len(FEATURES), prior=RULE_PRIOR)).eval()

    with torch.no_grad():
        weights = actor(state)
        scored = scores(candidate_features(table, states, candidates), weights)[0].numpy()
    rule = rule_scores(overlap_counts(table, states, candidates)[0], table.popularity[1:])

    assert np.argsort(-scored).tolist() == np.argsort(-rule).tolist() == [1, 3, 0, 2]


def test_an_averaged_actor_serves_the_mean_of_its_members_corrections():
    shape = Shape(k=2, state_dim=4, features=len(FEATURES), prior=RULE_PRIOR, hidden=(8, 6))
    torch.manual_seed(0)
    members = [Actor(shape) for _ in range(3)]
    for member in members:  # heads start at zero: give each a correction of its own
        torch.nn.init.normal_(member.head.weight)
        torch.nn.init.normal_(member.head.bias)
    state = torch.randn(5, 4)

    merged = average(members)

    with torch.no_grad():
        corrections = torch.stack([m.head(m.body(state)) for m in members]).mean(dim=0)
        expected = torch.nn.functional.normalize(torch.tensor(RULE_PRIOR) + corrections, dim=-1)
        assert merged.shape.hidden == (24, 18)
        assert torch.allclose(merged(state), expected, atol=1e-6)
        assert torch.allclose(average(members[:1])(state), members[0](state), atol=1e-6)


def test_logged_q_reads_each_logged_service_at_its_own_position():
    q = torch.arange(2 * 4 * 2, dtype=torch.float32).view(2, 4, 2)  # [B, C, K]
    shown = torch.tensor([[3, 1], [0, -1]])

    assert logged_q(q, shown).tolist() == [[q[0, 3, 0], q[0, 1, 1]], [q[1, 0, 0], q[1, 0, 1]]]


def test_importance_weights_are_clipped_inverse_propensities_and_0_where_nothing_was_shown():
    agent = Agent(Shape(k=2, state_dim=3, features=len(FEATURES)), AgentConfig(max_weight=5.0))
    batch = bandit_requests(2)
    batch = Requests(
        batch.user,
        batch.history,
        batch.candidates,
        torch.tensor([[0, -1], [0, 1]]),
        batch.values,
        torch.tensor([[0.5, 0.5], [0.1, 1.0]]),
    )

    assert agent.weights(batch).tolist() == [[2.0, 0.0], [5.0, 1.0]]


def bandit_requests(n: int, seed: int = 0) -> Requests:
    """Logged requests over the four services of `tiny_table` (rows 1..4), two shown at random
    (propensity 1/12 per position), each earning exactly its value rate minus 0.5 (rows 1..3:
    0, row 4: 0.5): a world where only `value_rate` matters."""
    rng = np.random.default_rng(seed)
    shown = np.stack([rng.permutation(4)[:2] for _ in range(n)])
    values = np.where(shown == 3, 0.5, 0.0).astype(np.float32)
    return Requests(
        user=torch.ones(n, dtype=torch.long),
        history=torch.zeros(n, 2, dtype=torch.long),
        candidates=torch.arange(1, 5).repeat(n, 1),
        shown=torch.from_numpy(shown),
        values=torch.from_numpy(values),
        propensities=torch.full((n, 2), 1 / 12),
    )


def bandit_users() -> UserSpace:
    return UserSpace(np.array([1]), torch.zeros(2, 3), torch.zeros(2, 2))


def top_choice(actor, data: Requests) -> np.ndarray:
    table, users = tiny_table(), bandit_users()
    return actor_scores(actor, table, users, data.batch(torch.arange(len(data)))).argmax(axis=1)


def test_the_actor_learns_from_logged_rewards_which_feature_pays():
    data = bandit_requests(400)
    later = iter(range(100))  # each epoch validates better: the last epoch's actor is kept
    result = fit(
        data,
        bandit_users(),
        tiny_table(),
        2,
        AgentConfig(epochs=15, batch_size=50),
        3,
        lambda actor: next(later),
    )

    assert (top_choice(result.actor, data) == 3).all()  # row 4: the only service that pays
    assert result.critic_losses[-1] < result.critic_losses[0]


def test_training_is_seeded_and_the_best_validation_epoch_is_kept():
    data, users, table = bandit_requests(100), bandit_users(), tiny_table()
    config = AgentConfig(epochs=3, batch_size=25)
    falling = iter([3.0, 2.0, 1.0, 0.0])  # the untrained actor validates best
    first = fit(data, users, table, 2, config, 7, lambda a: 0.0)
    second = fit(data, users, table, 2, config, 7, lambda a: 0.0)
    kept = fit(data, users, table, 2, config, 7, lambda a: next(falling))
    untrained = fit(data, users, table, 2, AgentConfig(epochs=0), 7, lambda a: 0.0)

    for name, value in first.actor.state_dict().items():
        assert torch.equal(value, second.actor.state_dict()[name])
    assert len(first.critic_losses) == len(first.actor_losses) == 3
    assert kept.epoch == 0 and kept.validation == [3.0, 2.0, 1.0, 0.0]
    for name, value in kept.actor.state_dict().items():
        assert torch.equal(value, untrained.actor.state_dict()[name])


def clicks_on_the_unpopular_service(n: int = 300, seed: int = 0) -> tuple[ServiceTable, Requests]:
    """Four services without shared interests; row 4 the most popular, row 3 the one with the
    highest value rate and the only one ever clicked: the rule (popularity, as nothing
    overlaps) ranks row 4 first, the logs say row 3."""
    table = ServiceTable.build(
        np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=np.float32),
        np.zeros((4, 2), np.float32),
        np.array([0.1, 0.2, 0.3, 1.0]),
        np.array([0.5, 0.5, 1.0, 0.4]),
    )
    data = bandit_requests(n, seed)
    values = torch.where(data.candidates.gather(1, data.shown) == 3, 1.0, 0.0)
    return table, with_values(data, values)


def with_values(data: Requests, values: torch.Tensor) -> Requests:
    return Requests(data.user, data.history, data.candidates, data.shown, values, data.propensities)


def test_the_fitted_prior_starts_the_actor_where_the_logged_clicks_point():
    table, data = clicks_on_the_unpopular_service()
    users = bandit_users()

    prior = fitted_prior({2: data}, users, table)
    started = untrained_actor(2, users, table, prior.direction)
    rule = untrained_actor(2, users, table)

    assert np.linalg.norm(prior.direction) == pytest.approx(1.0)
    assert prior.direction[FEATURES.index("value_rate")] > 0
    assert prior.showings == 2 * len(data)
    # The logs are unambiguous: cross-validation keeps the least penalised departure.
    assert prior.penalty == min(PENALTIES) and set(prior.losses) == set(PENALTIES)
    assert (actor_scores(started, table, users, data).argmax(axis=1) == 2).all()
    assert (actor_scores(rule, table, users, data).argmax(axis=1) == 3).all()


def test_clicks_that_follow_no_feature_get_the_strongest_pull_towards_the_rule():
    table, data = clicks_on_the_unpopular_service(n=400)
    # Clicks at random (a third of the showings), whatever was shown.
    noise = torch.from_numpy(np.random.default_rng(5).random(data.values.shape) < 1 / 3)

    prior = fitted_prior({2: with_values(data, noise.float())}, bandit_users(), table)

    assert prior.penalty == max(PENALTIES)
    assert min(prior.losses.values()) == prior.losses[max(PENALTIES)]


def test_without_clicked_and_unclicked_showings_the_rule_is_where_the_actor_starts():
    table, data = clicks_on_the_unpopular_service()
    for values in (torch.zeros_like(data.values), torch.ones_like(data.values)):
        prior = fitted_prior({2: with_values(data, values)}, bandit_users(), table)
        assert prior.direction == RULE_PRIOR and prior.penalty is None


def test_the_prior_pools_both_panels_with_an_offset_per_panel_and_position():
    table, three = clicks_on_the_unpopular_service(n=30, seed=1)
    _, two = clicks_on_the_unpopular_service(n=20, seed=2)
    wide = Requests(
        three.user,
        three.history,
        three.candidates,
        torch.cat([three.shown, three.shown[:, :1]], dim=1),
        torch.cat([three.values, three.values[:, :1]], dim=1),
        torch.cat([three.propensities, three.propensities[:, :1]], dim=1),
    )

    showings = shown_examples({3: wide, 2: two}, bandit_users(), table, None)

    assert len(showings.clicked) == 3 * 30 + 2 * 20
    # Panel K=2 first (sorted by K): slots 0, 1; then K=3: slots 2, 3, 4.
    assert np.bincount(showings.slots).tolist() == [20, 20, 30, 30, 30]
    assert showings.requests.max() == 30 + 20 - 1
    assert showings.design().shape == (130, 1 + len(FEATURES) + 5)


def test_the_fitted_prior_leaves_each_training_requests_own_outcomes_out():
    # Only value_rate differs between the four services, and it is counted on these very
    # requests (row 3 earns every click): the features the prior is fit on leave each
    # request's own outcomes out, as the actor-critic's do (candidates.Tallies).
    data = bandit_requests(200)
    values = torch.where(data.candidates.gather(1, data.shown) == 3, 1.0, 0.0)
    data = with_values(data, values)
    shown_rows = data.candidates.gather(1, data.shown).flatten().numpy() - 1
    earned = np.bincount(shown_rows, weights=values.flatten().numpy(), minlength=4)
    showings = np.bincount(shown_rows, minlength=4).astype(np.float64)
    events = np.zeros(4)
    table = ServiceTable.build(
        np.ones((4, 2), np.float32),
        np.zeros((4, 2), np.float32),
        log_popularity(events),
        value_rates(earned, showings),
    )
    tallies = Tallies.build(events, earned, showings)

    rate = FEATURES.index("value_rate")
    counted = shown_examples({2: data}, bandit_users(), table, None)
    held_out = shown_examples({2: data}, bandit_users(), table, tallies)

    assert counted.features[counted.clicked, rate] == pytest.approx(table.value_rate[3].item())
    assert (
        held_out.features[held_out.clicked, rate] < counted.features[counted.clicked, rate]
    ).all()
    assert fitted_prior({2: data}, bandit_users(), table, tallies).direction[rate] > 0.9


# --- splits -------------------------------------------------------------------------------


def test_validation_has_its_own_users_and_later_times_and_test_is_latest():
    n = 1000
    rng = np.random.default_rng(0)
    sars = SarsSet(
        users=rng.integers(0, 50, n),
        history=[[] for _ in range(n)],
        candidates=[[] for _ in range(n)],
        actions=[[] for _ in range(n)],
        values=[np.zeros(0) for _ in range(n)],
        propensities=[np.zeros(0) for _ in range(n)],
        recorded=np.zeros(n, bool),
        times=rng.random(n),
    )

    parts = split(sars, validation_users=0.2, validation=0.2, test=0.2, seed=1)

    train, validation, test = (
        sars.subset(getattr(parts, p)) for p in ("train", "validation", "test")
    )
    assert not set(validation.users) & (set(train.users) | set(test.users))
    assert len(set(validation.users)) == 10
    assert validation.times.min() > train.times.max()
    assert test.times.min() > validation.times.max()
    assert len(train) + len(test) + len(validation) < n  # validation users' other times unused
    assert len(validation) > 0 and len(test) > 0


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
    unbeatable = RLConfig(**{**TINY.__dict__, "margin": 10.0})
    outcome = RLPipeline(unbeatable).run(env(), seed=3)

    metadata = PipelineMetadata.objects(pipeline="RL").order_by("-id").first()
    steps = {step.name: step for step in metadata.steps}
    assert steps["extract"].details["source"] == "synthetic"
    [model] = ModelVersion.objects(name="rl")
    assert steps["prepare"].details["evidence"] == "simulator"
    for panel, k in (("v1", 3), ("v2", 2)):
        numbers = steps["evaluate"].details[panel]
        assert numbers["sessions"] > 0
        for name in ("rl", "rule", "popularity", "random", "logged"):
            low, high = numbers[name]["simulated"]["ci"]
            assert 0.0 <= low <= numbers[name]["reward"] <= high <= k
            assert 0.0 <= numbers[name][f"hr@{k}"] <= 1.0
        for name in ("rule", "popularity", "random"):
            margin = numbers["margins"][name]
            rl, other = numbers["rl"]["reward"], numbers[name]["reward"]
            assert margin["value"] == pytest.approx(rl - other)
            assert margin["ci"][0] <= margin["value"] <= margin["ci"][1]
        assert model.metrics[panel] == numbers  # the numbers go with the model version
    assert outcome.status == "rejected" and metadata.status == "rejected"
    assert "RL reward" in outcome.reason and metadata.reason == outcome.reason
    assert model.status == "rejected" and model.metrics["rejection_reason"] == outcome.reason
    assert model.file_id is None  # a rejected candidate keeps no weights


def gate_numbers(rl: float, spread: float = 0.01, **others: float) -> dict:
    """Metrics as `evaluate` records them: values, and RL's margins with +-spread intervals."""
    margins = {
        name: {"value": rl - v, "ci": [rl - v - spread, rl - v + spread]}
        for name, v in others.items()
    }
    numbers = {
        "sessions": 10,
        "rl": {"reward": rl},
        **{name: {"reward": v} for name, v in others.items()},
        "margins": margins,
    }
    return {"v1": numbers, "v2": numbers}


@pytest.mark.parametrize(
    ("rl", "reason"),
    [
        (0.40, None),
        (0.30, "does not beat InterestRule 0.3500 \\(margin -0.0500"),
        (0.255, "does not beat NCF 0.2500 \\(margin \\+0.0050, 95% CI \\[-0.0050, \\+0.0150\\]"),
        (0.22, "does not beat Popularity 0.2200"),
        (0.21, "does not beat Random 0.2100"),
    ],
)
def test_promotion_needs_rl_above_ncf_the_rule_popularity_and_random(rl, reason):
    metrics = gate_numbers(rl, ncf=0.25, rule=0.35, popularity=0.22, random=0.21)
    pipeline = RLPipeline()
    if reason is None:
        pipeline.validate_model(None, metrics, None)
    else:
        with pytest.raises(ModelValidationError, match=reason):
            pipeline.validate_model(None, metrics, None)


def test_the_whole_margin_interval_must_clear_the_margin_setting():
    assert gate_numbers(0.30, rule=0.28)["v1"]["margins"]["rule"]["ci"] == pytest.approx(
        [0.01, 0.03]
    )
    RLPipeline(RLConfig(margin=0.005)).validate_model(None, gate_numbers(0.30, rule=0.28), None)
    with pytest.raises(ModelValidationError, match="InterestRule"):
        RLPipeline(RLConfig(margin=0.015)).validate_model(None, gate_numbers(0.30, rule=0.28), None)
    with pytest.raises(ModelValidationError, match="InterestRule"):  # wider interval, same mean
        RLPipeline().validate_model(None, gate_numbers(0.30, spread=0.03, rule=0.28), None)


def test_rl_trains_on_stored_traffic_when_there_is_enough(world, client):
    recommendations, actions = generate_sessions(world, 400, seed=5)
    write_sessions(recommendations, actions)
    config = RLConfig(**{**TINY.__dict__, "min_real_sarses": 100})

    outcome = AlwaysPromoted(config).run(env(), seed=3)  # about the data source, not quality

    metadata = PipelineMetadata.objects(pipeline="RL").order_by("-id").first()
    extract = metadata.steps[0].details
    assert extract["source"] == "real" and extract["real_sarses"] == extract["sarses"] == 400
    assert extract["regeneration"]["recommendations"] == 400
    assert outcome.status == metadata.status == "promoted"
    assert ModelVersion.objects(name="rl", status="live").first().config["source"] == "real"


def logged_world(dump: dict) -> None:
    """Sessions logged by the world's stochastic policy (with propensities), stored as real."""
    write_sessions(*generate_sessions(dump, 1500, seed=5))


@pytest.mark.parametrize(("min_logged", "evidence"), [(10, "off-policy"), (10**6, "simulator")])
def test_the_gate_decides_on_off_policy_estimates_once_enough_requests_carry_propensities(
    world, min_logged, evidence
):
    logged_world(world)
    config = RLConfig(**{**TINY.__dict__, "min_real_sarses": 100, "min_logged_for_ope": min_logged})

    RLPipeline(config).run(env(), seed=3)

    steps = {
        s.name: s for s in PipelineMetadata.objects(pipeline="RL").order_by("-id").first().steps
    }
    assert steps["prepare"].details["evidence"] == evidence
    assert steps["prepare"].details["test_with_propensities"] > 10
    numbers = steps["evaluate"].details["v1"]
    for name in ("rl", "rule", "popularity", "random"):
        entry = numbers[name]
        if evidence == "off-policy":
            for estimator in ("ips", "snips", "dr"):
                low, high = entry[estimator]["ci"]
                assert low <= entry[estimator]["value"] <= high
            assert entry["reward"] == entry["dr"]["value"]
        else:
            assert "dr" not in entry and entry["reward"] == entry["simulated"]["value"]


def test_an_untrained_actor_is_rejected_because_the_rule_wins(world):
    logged_world(world)
    untrained = RLConfig(
        **{**TINY.__dict__, "min_real_sarses": 100, "agent": AgentConfig(epochs=0)}
    )

    outcome = RLPipeline(untrained).run(env(), seed=3)

    assert outcome.status == "rejected"
    assert "does not beat InterestRule" in outcome.reason


@pytest.mark.parametrize(("ensemble_validation", "rule_served"), [(-1.0, True), (10.0, False)])
def test_the_rules_ranking_is_kept_when_no_trained_ensemble_validates_above_it(
    world, monkeypatch, ensemble_validation, rule_served
):
    # Every grid point's ensemble validates below (or above) the rule's own ranking, whose
    # validation value lies within [0, K].
    def ensemble(self, config, data, k, validate, ctx, prior):
        actor = Actor(actor_shape(k, data.users, data.services.table))
        torch.nn.init.normal_(actor.head.weight)  # away from the rule
        return Choice(actor.eval(), config, ensemble_validation, [])

    monkeypatch.setattr(RLPipeline, "_ensemble", ensemble)

    RLPipeline(TINY).run(env(), seed=3)

    metadata = PipelineMetadata.objects(pipeline="RL").order_by("-id").first()
    train = next(step for step in metadata.steps if step.name == "train").details
    for panel, k in (("v1", 3), ("v2", 2)):
        assert 0.0 <= train[panel]["rule_validation"] <= k
        assert train[panel]["chosen"]["rule"] is rule_served
    # The fitted starting direction is recorded: a unit vector over the features.
    assert list(train["prior"]["direction"]) == list(FEATURES)
    assert np.linalg.norm(list(train["prior"]["direction"].values())) == pytest.approx(1.0)


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
    component = engine("RL").component()
    row = component.index.rows(np.array([90_000]))
    embedded = component.table.embeddings[row].numpy()
    assert np.linalg.norm(embedded) == pytest.approx(1.0, abs=1e-5)  # encoded, not a zero row
    assert component.table.interests[row].sum() > 0  # its declared interests are known


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
