"""EASE, iALS, Hybrid and Auto (the champion) on one small clustered world trained once: the
grids chosen on validation, promotion by the gate, served scores equal to the evaluated ones,
the champion served by Auto and shown in /health."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recommender.engines.auto.pipeline import ChampionPipeline
from recommender.engines.autoencoders import embeddings as emb
from recommender.engines.base.interactions import read_interactions
from recommender.engines.base.scoring import IdLists, component_scorer, scores_of_one
from recommender.engines.ease import inference as ease_inference
from recommender.engines.ease.model import component as ease_component
from recommender.engines.ease.model import ease_weights, gram, modelled_rows
from recommender.engines.ease.pipeline import EASEConfig, EASEPipeline
from recommender.engines.hybrid import covisits, text
from recommender.engines.hybrid import inference as hybrid_inference
from recommender.engines.hybrid import pipeline as hybrid_pipeline
from recommender.engines.hybrid.covisits import SETTINGS as COVISIT_SETTINGS
from recommender.engines.hybrid.covisits import CoVisitSetting
from recommender.engines.hybrid.model import (
    RECENCY_DECAYS,
    WEIGHT_GRID,
    ContentSimilarity,
    HybridComponent,
    RecentHistory,
    fit_weights,
    standardised,
)
from recommender.engines.hybrid.pipeline import (
    OWN_PARTS,
    Blend,
    Fitted,
    HybridPipeline,
    with_best_option,
)
from recommender.engines.hybrid.text import DECAYS as TEXT_DECAYS
from recommender.engines.ials import inference as ials_inference
from recommender.engines.ials.pipeline import IALSConfig, IALSPipeline
from recommender.engines.ncf import MODEL_NAME as NCF
from recommender.engines.ncf import inference as ncf_inference
from recommender.engines.ncf.pipeline import NCFPipeline
from recommender.engines.popularity.pipeline import PopularityPipeline
from recommender.evaluation import protocol
from recommender.evaluation.metrics import positive_ranks, ranking_metrics
from recommender.model_store import versions as model_store
from recommender.model_store.versions import StoredModel
from recommender.models.ops import PipelineMetadata
from recommender.store import stamps
from tests.api.helpers import body
from tests.app_helpers import change_settings, deps, engine, env
from tests.conftest import TEST_MONGODB_HOST, fresh_store
from tests.engines.test_ncf import FAST, cluster_of, clustered_dump, context, train_embeddings_stage

pytestmark = pytest.mark.slow  # the world trains every engine once (about 15 s)
SEED = 3
IALS_FAST = IALSConfig(factors=(8, 16), regularization=(0.1, 1.0), alpha=(1.0, 5.0))
PIPELINES = {
    "ncf": lambda: NCFPipeline(FAST),
    "ease": lambda: EASEPipeline(EASEConfig(lambdas=(1.0, 10.0, 100.0))),
    "ials": lambda: IALSPipeline(IALS_FAST),
    "popularity": PopularityPipeline,
    "hybrid": HybridPipeline,
    "champion": ChampionPipeline,
}
COMPONENTS = {
    "NCF": ncf_inference.component,
    "EASE": ease_inference.live_component,
    "iALS": ials_inference.live_component,
    "Hybrid": hybrid_inference.live_component,
}


@pytest.fixture(scope="module")
def world():
    from recommender import create_app

    with fresh_store(TEST_MONGODB_HOST) as store:
        app = create_app("testing", **store, RS_API_TOKEN=None, MODEL_RELOAD_INTERVAL=0)
        with app.app_context():
            dump = clustered_dump(users=120)
            train_embeddings_stage()
            outcomes = {name: make().run(env(), seed=SEED) for name, make in PIPELINES.items()}
            yield app, dump, outcomes


def metadata(pipeline: str, step: str) -> dict:
    run = PipelineMetadata.objects(pipeline=pipeline).order_by("-id").first()
    return next(s for s in run.steps if s.name == step).details


def test_every_engine_is_promoted_on_one_split(world):
    _, _, outcomes = world
    assert {name: o.status for name, o in outcomes.items()} == dict.fromkeys(PIPELINES, "promoted")
    splits = {o.metrics["split"] for name, o in outcomes.items() if "model" in o.metrics}
    assert len(splits) == 1
    for name in ("ncf", "ease", "ials", "hybrid"):
        gate = outcomes[name].metrics["model"]["gate"]
        popularity = outcomes[name].metrics["popularity"]["gate"]
        assert gate["ndcg@10"] >= popularity["ndcg@10"] + 0.005
        assert gate["users"] >= 10


def test_settings_are_chosen_on_the_tune_part_and_recorded(world):
    ease = metadata("EASE", "train")
    assert [entry["setting"] for entry in ease["grid"]] == [1.0, 10.0, 100.0]
    best = max(ease["grid"], key=lambda entry: entry["tune"]["ndcg@10"])
    assert ease["chosen"] == best["setting"]
    assert model_store.live_version("ease").config["lambda"] == ease["chosen"]

    ials = metadata("iALS", "train")
    assert len(ials["grid"]) == 8
    best = max(ials["grid"], key=lambda entry: entry["tune"]["ndcg@10"])
    assert ials["chosen"] == best["setting"]
    assert model_store.live_version("ials").config["setting"] == ials["chosen"]

    hybrid = metadata("Hybrid", "train")
    by_decay = hybrid["chosen"]["tune_ndcg by recency decay"]
    assert [float(decay) for decay in by_decay] == list(RECENCY_DECAYS)
    # The recent-history part joins only with the decay that blends best on the tune users,
    # and only when that blend beats the one without it; then the co-visits, likewise.
    best_decay = max(RECENCY_DECAYS, key=lambda decay: by_decay[str(decay)])
    joined = by_decay[str(best_decay)] > hybrid["tune_without_recent"]
    assert hybrid["chosen"]["recency decay"] == (best_decay if joined else None)
    assert hybrid["tune_without_covisits"] == max(hybrid["tune_without_recent"], *by_decay.values())
    by_setting = hybrid["chosen"]["tune_ndcg by co-visits"]
    assert list(by_setting) == [setting.label for setting in COVISIT_SETTINGS]
    best_setting = max(by_setting, key=by_setting.get)
    covisited = by_setting[best_setting] > hybrid["tune_without_covisits"]
    assert hybrid["chosen"]["co-visits"] == (best_setting if covisited else None)
    assert hybrid["tune_without_text"] == max(hybrid["tune_without_covisits"], *by_setting.values())
    by_text = hybrid["chosen"]["tune_ndcg by text decay"]
    assert [float(decay) for decay in by_text] == list(TEXT_DECAYS)
    best_text = max(TEXT_DECAYS, key=lambda decay: by_text[str(decay)])
    worded = by_text[str(best_text)] > hybrid["tune_without_text"]
    assert hybrid["chosen"]["text decay"] == (best_text if worded else None)
    assert hybrid["tune_ndcg"] == max(hybrid["tune_without_text"], *by_text.values())
    base = ["ncf", "ease", "ials", "content", "popularity"]
    optional = ["recent"] * joined + ["covisits"] * covisited + ["text"] * worded
    assert hybrid["parts"] == base + optional
    assert set(hybrid["chosen"]["weights"]) == set(hybrid["parts"])
    config = model_store.live_version("hybrid").config
    assert config["recency_decay"] == hybrid["chosen"]["recency decay"]
    stored = config["covisits"] and CoVisitSetting(**config["covisits"]).label
    assert stored == hybrid["chosen"]["co-visits"]
    assert config["text_decay"] == hybrid["chosen"]["text decay"]


@pytest.mark.parametrize("name", list(COMPONENTS))
def test_served_scores_equal_the_evaluated_ones(world, name):
    """The offline evaluator's scorer and the served engine score the same user's candidates
    alike (the user's history being what the evaluator gives it: training positives)."""
    data = read_interactions()
    split = protocol.split(data, SEED)
    scorer = component_scorer(COMPONENTS[name](deps()), data, split)
    user_row = int(split.test.users[0])
    items = split.test.candidates()[:1]
    history = data.services.ids[split.train_services[split.train_users == user_row] - 1]
    user_id = int(data.users.ids[user_row - 1])
    candidates = data.services.ids[items[0] - 1]

    evaluated = scorer(np.array([user_row]), items)[0]
    served = engine(name).answer(context(user_id, candidates, history), 3, ranking=True)

    by_service = dict(zip(served.services, served.scores, strict=True))
    np.testing.assert_allclose(
        [by_service[s] for s in candidates.tolist()], evaluated, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", [*COMPONENTS, "content"])
def test_one_users_scores_equal_their_row_of_a_batch(world, name):
    """Serving's one-user paths (no sparse matrices) score as the batch paths do, with a
    history that lists a service twice and an unknown id, and with an empty one."""
    _, dump, _ = world
    if name == "content":
        component = ContentSimilarity(emb.cached_embeddings(deps().models).services)
    else:
        component = COMPONENTS[name](deps())
    first, second = dump["users"][1], dump["users"][2]
    candidates = np.arange(1, 33, dtype=np.int64)
    for history in ([*first["accessed_services"], first["accessed_services"][0], 10_000], []):
        ids = np.array([*history, *second["accessed_services"]], dtype=np.int64)
        both = IdLists(np.array([0, len(history), len(ids)]), ids)
        batch = component.batch_scores(
            np.array([first["id"], second["id"]]), both, np.stack([candidates, candidates])
        )

        one = scores_of_one(component, first["id"], ids[: len(history)], candidates)

        np.testing.assert_allclose(one, batch[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["EASE", "iALS", "Hybrid"])
def test_recommends_the_users_own_cluster(world, name):
    _, dump, _ = world
    member = dump["users"][1]  # cluster 1
    accessed = member["accessed_services"]
    candidates = [s for s in range(1, 33) if s not in accessed]

    top = engine(name).answer(context(member["id"], candidates, accessed), 3, ranking=False)
    ranking = engine(name).answer(context(member["id"], candidates, accessed), 3, ranking=True)

    assert [cluster_of(s) for s in top.services] == [1, 1, 1]
    assert sorted(ranking.services) == sorted(candidates)
    assert ranking.services[:3] == top.services
    assert engine(name).model_version() == model_store.live_version(name.lower()).version


def test_offline_evaluators_of_the_new_engines_agree_with_their_pipelines(world):
    _, _, outcomes = world
    for name, module in (("ease", ease_inference), ("ials", ials_inference)):
        served = module.offline_metrics(deps(), seed=SEED)
        recorded = outcomes[name].metrics["model"]["test"]
        assert served["ndcg@10"] == pytest.approx(recorded["ndcg@10"])
        assert served["full"] == pytest.approx(recorded["full"])


def test_the_champion_has_the_best_gate_ndcg_and_serves_auto(world):
    app, dump, outcomes = world
    gates = {
        name: outcomes[name].metrics["model"]["gate"]["ndcg@10"]
        for name in ("ncf", "hybrid", "ease", "ials")
    }
    champion = model_store.live_version("champion").config
    assert champion["model"] == max(gates, key=gates.get)
    assert champion["gate_ndcg@10"] == max(gates.values())
    member = dump["users"][2]

    client = app.test_client()
    auto = client.post("/recommendations", json=body(user_id=member["id"], candidates=[]))
    ranked = client.post(
        "/recommendations",
        json=body(user_id=member["id"], engine_version="AutoRanking", candidates=[]),
    )
    asked = client.post(
        "/recommendations", json=body(user_id=member["id"], engine_version="iALS", candidates=[])
    )
    health = client.get("/health").json

    assert auto.json["engine_version"] == "Auto"  # the default, DEFAULT_RECOMMENDATION_ALG
    champion_engine = engine(champion["engine"])
    expected = champion_engine.answer(
        context(member["id"], auto.json["recommendations"], member["accessed_services"]),
        3,
        ranking=False,
    )
    assert sorted(auto.json["recommendations"]) == sorted(expected.services)
    assert ranked.json["engine_version"] == "AutoRanking"
    assert len(ranked.json["recommendations"]) == 32 - len(member["accessed_services"])
    assert asked.json["engine_version"] == "iALS"  # an explicit engine is still honoured
    assert health["training"]["champion"]["engine"] == champion["engine"]
    assert health["training"]["champion"]["version"] == engine("Auto").model_version()
    assert health["recommender_engines"]["Auto"]["status"] == "UP"


# --- units ---------------------------------------------------------------------------------------


def test_ease_weights_are_the_ridge_regression_of_each_service_on_the_others():
    rng = np.random.default_rng(0)
    x = (rng.random((60, 7)) < 0.3).astype(np.float64)
    users, columns = np.nonzero(x)

    weights = ease_weights(gram(users, columns, 60, 7), lam=2.0)

    assert np.allclose(np.diag(weights), 0.0)
    for j in range(7):
        others = [i for i in range(7) if i != j]
        a = x[:, others]
        ridge = np.linalg.solve(a.T @ a + 2.0 * np.eye(6), a.T @ x[:, j])
        np.testing.assert_allclose(weights[others, j], ridge, rtol=1e-3, atol=1e-4)


def test_ease_models_only_the_most_accessed_services_above_its_size_limit():
    counts = np.array([0.0, 5, 0, 9, 1, 9, 2])

    assert modelled_rows(counts, 10).tolist() == [1, 3, 4, 5, 6]
    assert modelled_rows(counts, 3).tolist() == [1, 3, 5]  # 9, 9, 5: ties by the lower row


def test_the_hybrid_blends_the_parts_rebuilt_on_a_new_catalogue(world):
    # A dump load changes the catalogue and no model: NCF and the embeddings rebuild their
    # components on it, and the Hybrid must blend those, not the ones it was first built with.
    before = hybrid_inference.live_component(deps())
    assert before.parts[NCF] is ncf_inference.component(deps())

    stamps.bump(stamps.CATALOGUE)

    after = hybrid_inference.live_component(deps())
    rebuilt = ncf_inference.component(deps())
    assert rebuilt is not before.parts[NCF]
    assert after.parts[NCF] is rebuilt
    assert after.version == before.version


def test_a_stored_hybrid_with_its_own_parts_scores_as_the_blend_it_was_fitted_as(world):
    # Whichever optional parts the world's Hybrid kept, here a blend that holds the co-visits and
    # the text similarity goes through packaging and the serving build as a trained one would.
    live = hybrid_inference.live_component(deps())
    data = read_interactions()
    split = protocol.split(data, SEED)
    counts = split.train_counts(data.width)
    (covisited,) = covisits.fit(
        data.services, split.train_users, split.train_services, counts, (COVISIT_SETTINGS[-1],)
    )
    worded = text.fit(data.services, text.read_texts())[-1]
    base = {name: part for name, part in live.parts.items() if name not in ("covisits", "text")}
    parts = {**base, "covisits": covisited, "text": worded}
    blend = HybridComponent(0, parts, np.linspace(0.25, 1.0, len(parts)))
    versions = {name: int(part.version) for name, part in parts.items() if name not in OWN_PARTS}
    fitted = Fitted(blend, counts[1:], data.services.ids, versions, split.key)
    artifact = HybridPipeline().package(fitted, {}, None)
    stored = StoredModel("hybrid", 7, artifact.tensors, artifact.config)

    rebuilt = hybrid_inference.build(stored, dict(live.parts))

    assert list(rebuilt.parts) == list(parts) and rebuilt.version == 7
    assert rebuilt.parts["text"].decay == worded.decay == text.DECAYS[-1]
    users, items = split.test.users, np.maximum(split.test.candidates(), 1)
    expected = component_scorer(blend, data, split)(users, items)
    np.testing.assert_allclose(component_scorer(rebuilt, data, split)(users, items), expected)
    # Both own parts weigh in the scores compared: without either the blend scores otherwise.
    for left_out in ("covisits", "text"):
        kept = [name != left_out for name in parts]
        without = HybridComponent(
            0, {n: p for n, p in parts.items() if n != left_out}, blend.weights[kept]
        )
        assert not np.allclose(component_scorer(without, data, split)(users, items), expected)


def test_hybrid_waits_when_a_part_is_replaced_and_a_wider_margin_rejects(world):
    # Last in the module: it changes the world.
    stored = model_store.load("ease")
    model_store.promote(
        model_store.save_candidate(
            "ease",
            {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in stored.tensors.items()},
            config=stored.config,
        )
    )

    assert engine("Hybrid").is_ready() == (False, "Missing model in db")

    change_settings(PROMOTION_MARGIN=1.0)
    outcome = EASEPipeline(EASEConfig(lambdas=(10.0,))).run(env(), seed=SEED)
    assert outcome.status == "rejected" and "by the margin 1.0" in outcome.reason
    change_settings(PROMOTION_MIN_USERS=10_000)
    outcome = EASEPipeline(EASEConfig(lambdas=(10.0,))).run(env(), seed=SEED)
    assert outcome.status == "rejected" and "at least 10000 needed" in outcome.reason


def test_hybrid_weights_follow_the_informative_part_and_features_are_standardised_per_user():
    rng = np.random.default_rng(0)
    informative = rng.random((300, 100))
    informative[:, 0] += 0.5  # the positive (first) scores high on part 0 only
    features = np.stack([informative, rng.random((300, 100))], axis=-1)

    weights, ndcg = fit_weights(standardised(features), rng)

    assert weights[0] > 0 and weights[1] == 0  # scale-free: any positive weight alone
    assert ndcg > 0.5
    scaled = standardised(np.stack([informative * 7 + 3, informative], axis=-1))
    np.testing.assert_allclose(scaled[..., 0], scaled[..., 1])  # scale and offset removed


def test_hybrid_weights_are_a_grid_point_no_single_weight_change_improves():
    rng = np.random.default_rng(4)
    scores = rng.random((200, 50, 3))
    scores[:, 0] += np.array([0.3, 0.2, 0.1]) * rng.random((200, 3))  # three weak parts
    features = standardised(scores)

    weights, ndcg = fit_weights(features, rng)

    def ndcg_of(trial: np.ndarray) -> float:
        combined = features @ trial
        ranks = positive_ranks(combined[:, 0], combined[:, 1:])
        return ranking_metrics(ranks, (10,))["ndcg@10"]

    assert set(weights.tolist()) <= set(WEIGHT_GRID) and weights.any()
    assert ndcg == ndcg_of(weights) >= ndcg_of(np.ones(3))  # it starts from equal weights
    for part in range(3):
        for value in WEIGHT_GRID:
            trial = weights.copy()
            trial[part] = value
            if trial.any():
                assert ndcg_of(trial) <= ndcg


class Counted:
    """A part with fixed scores that counts its calls."""

    version = 0

    def __init__(self, scores: np.ndarray):
        self.scores, self.calls = scores, 0

    def batch_scores(self, user_ids, histories, candidates) -> np.ndarray:
        self.calls += 1
        return self.scores


def test_hybrid_scores_are_the_weighted_standardised_features_without_a_part_weighted_zero():
    rng = np.random.default_rng(0)
    scales = {"a": 1.0, "b": 5.0, "c": 2.0}
    parts = {name: Counted(rng.random((3, 20)) * scale) for name, scale in scales.items()}
    model = HybridComponent(0, parts, np.array([1.0, 0.0, 0.5]))
    args = (np.arange(3), IdLists(np.zeros(4, dtype=np.int64), np.zeros(0)), np.zeros((3, 20)))
    expected = model.features(*args) @ model.weights

    scores = model.batch_scores(*args)

    np.testing.assert_allclose(scores, expected, rtol=1e-12)
    assert [part.calls for part in parts.values()] == [2, 1, 2]  # b only for `features`


def test_recent_history_weighs_each_service_by_its_latest_place():
    ids = np.array([10, 20, 30, 40])  # rows 1..4 of B; row 0 (unknown ids) is zeros
    b = np.zeros((5, 5), dtype=np.float32)
    b[1:, 1:] = np.random.default_rng(0).random((4, 4)).astype(np.float32)
    recent = RecentHistory(ease_component(1, ids, b, np.zeros(4)), decay=0.5)
    candidates = np.array([[10, 20, 30, 40, 99]])
    # Oldest first: 10, 20, then 10 again (its latest place: weight 1), then an unknown id.
    history = IdLists.one(np.array([10, 20, 10, 77]))
    # After 20 come two entries, after 10's latest one; the unknown id scores nothing.
    expected = 0.5**1 * b[1, [1, 2, 3, 4, 0]] + 0.5**2 * b[2, [1, 2, 3, 4, 0]]

    served = recent.batch_scores(np.zeros(1), history, candidates)
    np.testing.assert_allclose(served[0], expected, rtol=1e-6)
    # Several users at once (the evaluator's path) give each the same scores as alone.
    other = np.array([40, 30])
    both = IdLists(np.array([0, 4, 6]), np.concatenate([history.ids, other]))
    batch = recent.batch_scores(np.zeros(2), both, np.repeat(candidates, 2, axis=0))
    np.testing.assert_allclose(batch[0], served[0], rtol=1e-6)
    alone = recent.batch_scores(np.zeros(1), IdLists.one(other), candidates)
    np.testing.assert_allclose(batch[1], alone[0], rtol=1e-6)
    assert recent.version == 1


def _tune_features(signal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[300, 100] standardised scores: noise, plus `signal` (per user) on the positive (first)."""
    scores = rng.random((300, 100))
    scores[:, 0] += signal
    return standardised(scores)


def _blend(base: np.ndarray) -> Blend:
    return Blend({"base": Counted(np.zeros(1))}, base, *fit_weights(base, np.random.default_rng(1)))


def test_an_optional_part_joins_with_the_option_that_helps_most():
    rng = np.random.default_rng(0)
    base = _tune_features(np.full(300, 0.3), rng)[..., None]  # a weak part
    lifts = {"low": 0.2, "best": 1.0, "middle": 0.5}  # per option, how much its part separates
    options = {label: Counted(np.zeros(1)) for label in lifts}
    columns = {
        id(options[label]): _tune_features(np.full(300, lift), rng) for label, lift in lifts.items()
    }
    without = _blend(base)

    blend, by_option = with_best_option(
        without, "recent", options, lambda part: columns[id(part)][..., None], 1
    )

    assert list(blend.parts) == ["base", "recent"] and blend.parts["recent"] is options["best"]
    assert (
        by_option["best"] == blend.ndcg > max(by_option["low"], by_option["middle"], without.ndcg)
    )
    assert blend.weights[-1] > 0 and len(blend.weights) == 2
    assert blend.features.shape == (300, 100, 2)


def test_an_optional_part_stays_out_when_it_does_not_beat_the_blend_without_it():
    rng = np.random.default_rng(0)
    base = _tune_features(np.full(300, 5.0), rng)[..., None]  # ranks every positive first
    without = _blend(base)
    assert without.ndcg == 1.0
    options = {str(decay): Counted(np.zeros(1)) for decay in RECENCY_DECAYS}

    blend, by_option = with_best_option(
        without, "recent", options, lambda _: _tune_features(np.zeros(300), rng)[..., None], 1
    )

    assert blend is without and "recent" not in blend.parts
    assert set(by_option) == {"0.7", "0.85", "0.95"}


def test_an_option_left_at_weight_zero_stays_out_but_its_better_weights_are_kept(monkeypatch):
    rng = np.random.default_rng(0)
    without = _blend(_tune_features(np.full(300, 0.3), rng)[..., None])
    # The search over the wider blend ends better on the tune users with the option at 0.
    refit = (np.array([0.5, 0.0]), without.ndcg + 0.01)
    monkeypatch.setattr(hybrid_pipeline, "fit_weights", lambda features, rng: refit)
    option = Counted(np.zeros(1))

    blend, by_option = with_best_option(
        without, "covisits", {"only": option}, lambda _: without.features, 1
    )

    assert list(blend.parts) == ["base"] and blend.features is without.features
    assert blend.weights.tolist() == [0.5] and blend.ndcg == by_option["only"] == refit[1]
