"""NCF: data (positives, split, negatives), training and promotion, inference and cold start."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
import torch

from recommender.engines.autoencoders.model import TrainConfig as AETrainConfig
from recommender.engines.autoencoders.pipeline import AEConfig, AEPipeline, train_embeddings
from recommender.engines.base.engine import RecommendationContext
from recommender.engines.base.scoring import IdLists
from recommender.engines.ncf import MODEL_NAME, inference, training
from recommender.engines.ncf import data as ncf_data
from recommender.engines.ncf.model import NCFModel, NCFShape
from recommender.engines.ncf.pipeline import NCFPipeline
from recommender.engines.ncf.training import Scorer, TrainConfig, fit
from recommender.evaluation import protocol
from recommender.evaluation.protocol import Interactions, NonFiniteScoresError
from recommender.id_index import UNKNOWN, IdIndex
from recommender.model_store import versions as model_store
from recommender.models.marketplace import RECOMMENDABLE_STATUSES
from recommender.models.ops import ModelVersion, PipelineMetadata
from recommender.store import get_db, stamps
from tests import snapshots
from tests.api.helpers import body, load
from tests.app_helpers import change_settings, deps, engine, env
from tests.marketplace_dump import marketplace_dump, service
from tests.worlds import NCF_FAST

CLUSTERS = 4
PER_CLUSTER = 8  # services 1..32, cluster = (id - 1) // 8
AE_FAST = AEConfig(train=AETrainConfig(max_epochs=15, patience=3))
FAST = replace(
    NCF_FAST,
    # More "unknown" ids than by default: the tiny catalogue needs it to train the cold path.
    train=TrainConfig(max_epochs=25, patience=4, batch_size=256, lr=0.01, id_dropout=0.3),
)


def cluster_of(service_id: int) -> int:
    return (service_id - 1) // PER_CLUSTER


def user(user_id: int, cluster: int, accessed: list[int]) -> dict:
    return {
        "id": user_id,
        "aai_uid": f"u{user_id}@egi.eu",
        "scientific_domains": [20 + cluster],
        "categories": [10 + cluster],
        "accessed_services": accessed,
    }


def clustered_dump(
    users: int = 80, seed: int = 0, accessed=None, informative_profiles: bool = True
) -> dict:
    """Users order 5 services of their own interest cluster, in random order; services carry
    their cluster's category and domain, users too (or a random one when not
    `informative_profiles`). Service 99 is a draft (never recommendable)."""
    rng = np.random.default_rng(seed)
    dump = marketplace_dump()
    dump["services"] = [
        service(sid, categories=[10 + cluster_of(sid)], scientific_domains=[20 + cluster_of(sid)])
        for sid in range(1, CLUSTERS * PER_CLUSTER + 1)
    ] + [service(99, "draft", categories=[10], scientific_domains=[20])]
    dump["categories"] = [{"id": 10 + c, "name": f"C{c}"} for c in range(CLUSTERS)]
    dump["scientific_domains"] = [{"id": 20 + c, "name": f"D{c}"} for c in range(CLUSTERS)]
    dump["users"] = []
    for u in range(users):
        cluster = u % CLUSTERS
        own = 1 + cluster * PER_CLUSTER + rng.permutation(PER_CLUSTER)[:5]
        chosen = [int(s) for s in own] if accessed is None else list(accessed(rng))
        profile = cluster if informative_profiles else int(rng.integers(CLUSTERS))
        dump["users"].append(user(1000 + u, profile, chosen))
    dump["projects"] = []
    return load(dump)


def train_embeddings_stage(seed: int = 0) -> None:
    # Small worlds: about 40 gate users decide promotion (the default asks for 50).
    change_settings(PROMOTION_MIN_USERS=10)
    assert AEPipeline(AE_FAST).run(env(), seed=seed).status == "promoted"
    assert train_embeddings(env(), seed=seed).status == "promoted"


@pytest.fixture(scope="module")
def trained_world():
    """Built once for the module; each test gets a fresh copy (`trained`)."""
    with snapshots.own_app():
        dump = clustered_dump()
        train_embeddings_stage()
        outcome = NCFPipeline(FAST).run(env(), seed=3)
        assert outcome.status == "promoted", outcome.reason
        return dump, outcome, snapshots.take()


@pytest.fixture
def trained(app, trained_world):
    dump, outcome, snapshot = trained_world
    snapshots.restore(snapshot)
    return dump, outcome


def context(user_id: int | None, candidates, accessed=()) -> RecommendationContext:
    return RecommendationContext(
        candidates=np.asarray(candidates, dtype=np.int64),
        user_id=user_id,
        accessed_services=tuple(accessed),
        unique_id="x",
        timestamp=dt.datetime(2024, 1, 1),
    )


# --- data -----------------------------------------------------------------------------------


def interactions(lists: dict[int, list[int]], services: dict[int, str]) -> Interactions:
    pool = ((sid, status in RECOMMENDABLE_STATUSES) for sid, status in services.items())
    return protocol.build_interactions(lists.items(), pool)


def test_positives_collapse_repeats_keep_order_and_drop_unknown_services():
    data = interactions(
        {7: [3, 1, 3, 404, 2, 1], 5: [], 9: [2]}, {1: "published", 2: "draft", 3: "unverified"}
    )

    assert data.users.ids.tolist() == [7, 9]  # user 5 has no positive: no id row
    per_user = data.services.ids[data.service_rows - 1][data.user_rows == 1]
    assert per_user.tolist() == [3, 1, 2]
    assert data.position[data.user_rows == 1].tolist() == [0, 1, 2]
    # The draft is known (it was accessed) but never a negative.
    assert sorted(data.services.ids[data.recommendable - 1].tolist()) == [1, 3]


def test_training_negatives_skip_training_positives_and_non_recommendable():
    statuses = {s: ("deleted" if s > 25 else "published") for s in range(1, 31)}
    data = interactions({1: [1, 2, 3, 4, 5, 6], 2: [7, 8, 9, 10]}, statuses)
    split = protocol.split(data, seed=0)

    users, services = ncf_data.training_negatives(np.random.default_rng(2), data, split, 50)
    again = ncf_data.training_negatives(np.random.default_rng(2), data, split, 50)

    pairs = set(zip(users.tolist(), services.tolist(), strict=True))
    train = set(zip(split.train_users.tolist(), split.train_services.tolist(), strict=True))
    assert len(users) == 50 * len(split.train_users)
    assert not pairs & train
    assert (data.services.ids[services - 1] <= 25).all()
    np.testing.assert_array_equal(services, again[1])


# --- model and training loop ------------------------------------------------------------------


@pytest.mark.parametrize("base", [0, 2**40])  # a dense id table, a binary search
def test_unknown_ids_map_to_the_unknown_row_and_score_without_index_error(base):
    index = IdIndex(base + np.array([10, 20, 30]))
    asked = np.array([base + 20, base + 10, base + 25, base + 99, -1, 2**62])
    assert index.rows(asked).tolist() == [2, 1, UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN]
    assert index.rows(base + np.array([30, 10])).tolist() == [3, 1]
    assert IdIndex(np.array([], dtype=np.int64)).rows(np.array([5])).tolist() == [UNKNOWN]

    model = NCFModel(NCFShape(users=3, services=3, user_content=4, service_content=6))
    logits = model(
        torch.tensor([UNKNOWN]),
        torch.tensor([UNKNOWN, 1, 3]),
        torch.zeros(1, 4),
        torch.zeros(3, 6),
        torch.zeros(1, model.shape.mf_dim),
    )
    assert logits.shape == (3,) and torch.isfinite(logits).all()


def test_histories_pool_each_users_services_and_leave_a_positive_out_of_its_own():
    histories = ncf_data.Histories.build(np.array([2, 1, 2, 2]), np.array([5, 6, 7, 8]), rows=4)
    items, offsets = histories.bags(np.array([2, 0, 1]))
    assert items.tolist() == [5, 7, 8, 6] and offsets.tolist() == [0, 3, 3]

    model = NCFModel(NCFShape(users=3, services=8, user_content=2, service_content=2))
    scorer = Scorer(model, torch.zeros(4, 2), torch.zeros(9, 2), histories, torch.device("cpu"))
    users, services = torch.tensor([2, 2, 3]), torch.tensor([5, 6, 5])
    pooled = scorer._history(users, services, labels=torch.tensor([1.0, 0.0, 0.0]))
    rows = model.history.weight.detach()

    torch.testing.assert_close(pooled[0], (rows[7] + rows[8]) / 2)  # its own service 5 left out
    torch.testing.assert_close(pooled[1], (rows[5] + rows[7] + rows[8]) / 3)  # a negative
    torch.testing.assert_close(pooled[2], torch.zeros(model.shape.mf_dim))  # no history


def test_training_is_reproducible_with_a_seed():
    statuses = {s: "published" for s in range(1, 41)}
    rng = np.random.default_rng(0)
    data = interactions({u: list(rng.permutation(40)[:6] + 1) for u in range(30)}, statuses)
    split = protocol.split(data, seed=0)
    shape = NCFShape(len(data.users), len(data.services), 2, 2, 4, 4, (8, 4), (4, 4))
    config = TrainConfig(max_epochs=2, batch_size=64)
    users = np.zeros((data.users.rows_total, 2), np.float32)
    services = np.zeros((data.services.rows_total, 2), np.float32)

    def run():
        torch.manual_seed(0)
        result = fit(
            data, split, users, services, shape, config, torch.device("cpu"),
            np.random.default_rng(1), torch.Generator().manual_seed(1),
        )  # fmt: skip
        return result.model.state_dict(), result.history

    (first, history), (second, again) = run(), run()
    assert history == again
    assert all(torch.equal(first[key], second[key]) for key in first)


# --- pipeline --------------------------------------------------------------------------------


def test_training_beats_popularity_is_promoted_and_records_metrics(trained):
    _, outcome = trained
    metrics = outcome.metrics

    ncf, popularity = metrics["model"], metrics["popularity"]
    assert ncf["gate"]["ndcg@10"] > popularity["gate"]["ndcg@10"] + 0.005  # PROMOTION_MARGIN
    assert ncf["test"]["hr@10"] > popularity["test"]["hr@10"]
    assert ncf["tune"]["users"] + ncf["gate"]["users"] == ncf["test"]["users"] == 80
    assert {"users", "hr@3", "ndcg@3", "hr@10", "ndcg@10", "full"} == set(ncf["test"])
    assert {"mrr", "recall@10", "coverage@10"} <= set(ncf["test"]["full"])
    live = model_store.live_version(MODEL_NAME)
    assert live.version == outcome.model_version
    assert live.metrics["model"]["test"] == ncf["test"]
    assert live.config["split"] == metrics["split"]
    assert live.config["embeddings_version"] == model_store.live_version("embeddings").version
    metadata = PipelineMetadata.objects(pipeline="NCF").order_by("-id").first()
    evaluation = next(step for step in metadata.steps if step.name == "evaluate")
    assert evaluation.details["popularity"]["gate"] == popularity["gate"]
    train_step = next(step for step in metadata.steps if step.name == "train")
    assert train_step.details["chosen"] == {"epochs": metrics["best_epoch"]}
    assert train_step.details["grid"]["epochs"] == list(range(1, metrics["epochs"] + 1))


def test_model_that_cannot_beat_popularity_is_rejected_with_the_reason(app):
    # Everyone orders the same five services: Popularity ranks the held-out one first always.
    clustered_dump(users=40, accessed=lambda rng: (1 + rng.permutation(5)).tolist())
    train_embeddings_stage()

    outcome = NCFPipeline(FAST).run(env(), seed=1)

    assert outcome.status == "rejected"
    assert "does not beat Popularity" in outcome.reason and "by the margin" in outcome.reason
    assert outcome.metrics == {} and model_store.live_version(MODEL_NAME) is None
    rejected = ModelVersion.objects(name=MODEL_NAME).first()
    assert rejected.status == "rejected"
    assert "does not beat Popularity" in rejected.metrics["rejection_reason"]
    assert not engine("NCF").is_ready()[0]


def test_skipped_without_embeddings(app):
    clustered_dump(users=8)

    outcome = NCFPipeline(FAST).run(env(), seed=0)

    assert outcome.status == "skipped" and "embeddings" in outcome.reason


def test_rejected_when_no_user_has_enough_positives_to_validate(app):
    clustered_dump(users=12, accessed=lambda rng: [int(rng.integers(1, 33))])
    train_embeddings_stage()

    outcome = NCFPipeline(FAST).run(env(), seed=0)

    assert outcome.status == "rejected" and "to validate on" in outcome.reason


# --- inference -------------------------------------------------------------------------------


def test_recommends_own_cluster_and_ranks_every_candidate(trained):
    dump, _ = trained
    member = dump["users"][1]  # cluster 1
    accessed = set(member["accessed_services"])
    candidates = [s for s in range(1, 33) if s not in accessed]

    top = engine("NCF").answer(context(member["id"], candidates, accessed), 3, ranking=False)
    ranking = engine("NCF").answer(context(member["id"], candidates, accessed), 3, ranking=True)

    assert len(top.services) == 3 and cluster_of(top.services[0]) == 1
    scores = dict(zip(ranking.services, ranking.scores, strict=True))
    own = [scores[s] for s in candidates if cluster_of(s) == 1]
    assert np.mean(own) > np.mean([scores[s] for s in candidates if cluster_of(s) != 1])
    assert top.scores == sorted(top.scores, reverse=True)
    assert all(0.0 < s < 1.0 for s in top.scores)
    assert len(top.explanations) == len(top.explanations_short) == 3
    assert sorted(ranking.services) == sorted(candidates)
    assert ranking.scores == sorted(ranking.scores, reverse=True)
    assert ranking.services[:3] == top.services
    assert engine("NCF").model_version() == model_store.live_version(MODEL_NAME).version


def test_new_user_and_new_service_are_scored_through_content(trained):
    db = get_db()
    db.user.insert_one(
        {"_id": 5000, "categories": [12], "scientific_domains": [22], "accessed_services": []}
    )
    newcomer = service(40, categories=[12], scientific_domains=[22])
    newcomer["_id"] = newcomer.pop("id")
    db.service.insert_one(newcomer)
    stamps.bump(stamps.CATALOGUE)  # as a dump load does
    candidates = [*range(1, 33), 40]

    ranking = engine("NCF").answer(context(5000, candidates), 3, ranking=True)

    assert sorted(ranking.services) == candidates
    assert ranking.scores == sorted(ranking.scores, reverse=True)
    assert "profile" in ranking.explanations[0]
    scores = dict(zip(ranking.services, ranking.scores, strict=True))
    own = np.mean([scores[s] for s in candidates if s == 40 or cluster_of(s) == 2])
    others = np.mean([scores[s] for s in candidates if s != 40 and cluster_of(s) != 2])
    assert own > others  # the content branch carries the profile's interests

    known = engine("NCF").answer(context(1000, [40, 2, 3]), 3, ranking=False)
    assert 40 in known.services  # a service added after training: scored, no IndexError
    assert known.explanations_short[known.services.index(40)] == "New and relevant to you"


def test_a_new_user_with_orders_is_scored_through_their_history(app):
    # Profiles say nothing here, so what users ordered is the signal the model learns.
    clustered_dump(informative_profiles=False)
    train_embeddings_stage()
    assert NCFPipeline(FAST).run(env(), seed=3).status == "promoted"
    # Not in the model, no profile features: only what they ordered (cluster 3) speaks.
    get_db().user.insert_one(
        {"_id": 6000, "categories": [], "scientific_domains": [], "accessed_services": [25, 26]}
    )
    stamps.bump(stamps.CATALOGUE)
    candidates = list(range(1, 25)) + list(range(27, 33))

    ranking = engine("NCF").answer(context(6000, candidates, accessed=(25, 26)), 3, ranking=True)

    scores = dict(zip(ranking.services, ranking.scores, strict=True))
    own = np.mean([scores[s] for s in candidates if cluster_of(s) == 3])
    assert own > np.mean([scores[s] for s in candidates if cluster_of(s) != 3]) + 0.1


def test_served_over_http_to_logged_in_users_never_with_accessed_services(trained, client):
    dump, _ = trained
    member = dump["users"][2]

    response = client.post(
        "/recommendations",
        json=body(user_id=member["id"], engine_version="NCF", candidates=list(range(1, 33))),
    )
    ranked = client.post(
        "/recommendations",
        json=body(user_id=member["id"], engine_version="NCFRanking", candidates=[]),
    )

    assert response.status_code == 200, response.json
    assert response.json["engine_version"] == "NCF"
    assert len(response.json["recommendations"]) == 3
    assert not set(response.json["recommendations"]) & set(member["accessed_services"])
    assert ranked.json["engine_version"] == "NCFRanking"
    assert sorted(ranked.json["recommendations"]) == sorted(
        set(range(1, 33)) - set(member["accessed_services"])
    )


def test_component_is_built_once_per_version(trained):
    assert inference.component(deps()) is inference.component(deps())


def test_an_incompatible_stored_version_makes_ncf_not_ready_instead_of_failing(app):
    clustered_dump(users=8)
    train_embeddings_stage()
    embeddings = model_store.live_version("embeddings").version
    config = {"shape": {"users": 1}, "embeddings_version": embeddings}
    model_store.promote(model_store.save_candidate(MODEL_NAME, {"w": torch.ones(2)}, config))

    assert engine("NCF").is_ready() == (False, "Missing model in db")
    assert engine("NCF").answer(context(1000, [1, 2, 3]), 3, ranking=False).services == []


def test_offline_evaluation_of_the_served_model_agrees_with_the_pipeline(trained):
    _, outcome = trained

    served = inference.offline_metrics(deps(), seed=3)
    recorded = outcome.metrics["model"]["test"]

    assert {k: v for k, v in served.items() if k != "full"} == pytest.approx(
        {k: v for k, v in recorded.items() if k != "full"}
    )
    assert served["full"] == pytest.approx(recorded["full"])


def test_serving_from_precomputed_service_parts_gives_the_full_forward_scores(trained):
    """`scores` (one user) and `batch_scores` (several: evaluation, the Hybrid), both through
    gathered service parts, agree with the network's plain forward pass for trained and unknown
    users, with every candidate embedded (gathered parts) or one that is not (404: content
    parts computed on the spot); services the model does not know (404) are left out of the
    history, and a history of none it knows pools to zeros."""
    served = inference.component(deps())
    network, embeddings = served.network, served.embeddings
    accessed = np.array([3, 5], dtype=np.int64)
    with torch.inference_mode():
        history = network.history(torch.from_numpy(served.services.rows(accessed))).mean(0)
    nothing = torch.zeros_like(history)

    def plain(user_id: int, candidates: np.ndarray, pooled: torch.Tensor) -> np.ndarray:
        user = np.full(len(candidates), user_id, dtype=np.int64)
        with torch.inference_mode():
            logits = network(
                torch.from_numpy(served.users.rows(user)),
                torch.from_numpy(served.services.rows(candidates)),
                torch.from_numpy(embeddings.users.rows(user)),
                torch.from_numpy(embeddings.services.rows(candidates)),
                pooled.expand(len(candidates), -1),
            )
        return 1 / (1 + np.exp(-logits.numpy()))

    close = {"rtol": 1e-5, "atol": 1e-6}
    for candidates in ([1, 2, 7, 13, 30, 2], [1, 404, 13, 2, 7, 30]):
        candidates = np.asarray(candidates, dtype=np.int64)
        users = np.array([1, 9999, 1], dtype=np.int64)  # a trained user, an unknown one
        owners, ids = np.array([0, 0, 1, 1, 1, 2]), np.array([3, 5, 404, 3, 5, 404])
        batch = served.batch_scores(
            users,
            IdLists.from_pairs(owners, ids, 3),
            np.stack([candidates, candidates[::-1], candidates]),
        )
        for user_id in users[:2]:
            one, _, _ = served.scores(int(user_id), candidates, accessed)
            np.testing.assert_allclose(one, plain(user_id, candidates, history), **close)
        alone, _, _ = served.scores(1, candidates, np.array([404], dtype=np.int64))
        np.testing.assert_allclose(alone, plain(1, candidates, nothing), **close)
        np.testing.assert_allclose(batch[0], plain(1, candidates, history), **close)
        np.testing.assert_allclose(batch[1], plain(9999, candidates[::-1], history), **close)
        np.testing.assert_allclose(batch[2], plain(1, candidates, nothing), **close)
        assert not np.allclose(batch[0], batch[2])  # the history counts


def test_a_training_loss_that_goes_nan_fails_the_run_with_the_reason(app, monkeypatch):
    clustered_dump(users=40)
    train_embeddings_stage()
    monkeypatch.setattr(training, "_epoch", lambda *args: float("nan"))

    outcome = NCFPipeline(FAST).run(env(), seed=0)

    assert outcome.status == "failed"
    assert NonFiniteScoresError.__name__ in outcome.reason
    assert "NCF training loss at epoch 1" in outcome.reason
    assert model_store.live_version(MODEL_NAME) is None
