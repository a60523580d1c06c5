"""The "embedding" stage and the embeddings API NCF, RL and serving read."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engines.autoencoders.embeddings import cached_embeddings
from recommender.engines.autoencoders.model import TrainConfig
from recommender.engines.autoencoders.pipeline import AEConfig, AEPipeline, train_embeddings
from recommender.model_store import versions as model_store
from recommender.models.ops import ModelVersion
from recommender.services.runtime import runtime
from recommender.services.update import train_stage
from recommender.store import get_db, stamps
from tests.app_helpers import env
from tests.engines.ae_catalogue import insert_catalogue, user_docs

FAST = AEConfig(train=TrainConfig(max_epochs=12, patience=3, steps_per_epoch=16))


@pytest.fixture
def trained(app):
    insert_catalogue(users=120, services=60, seed=2)
    get_db().user.insert_one({"_id": 4000, "categories": [], "scientific_domains": []})
    assert AEPipeline(FAST).run(env(), seed=2).status == "promoted"
    outcome = train_embeddings(env(), seed=2)
    assert outcome.status == "promoted", outcome.reason
    return load_embeddings()


def test_every_user_and_service_gets_a_unit_vector(trained):
    users, services = trained.users, trained.services

    assert users.ids.tolist() == [*range(1000, 1120), 4000]
    assert services.ids.tolist() == list(range(1, 61))
    assert (users.dim, services.dim) == (64, 128)
    assert users.matrix.dtype == np.float32 and users.matrix.shape == (121, 64)
    norms = np.linalg.norm(users.matrix, axis=1)
    np.testing.assert_allclose(norms[:-1], 1.0, atol=1e-5)
    assert norms[-1] == 0.0  # user 4000 has no features
    np.testing.assert_allclose(np.linalg.norm(services.matrix, axis=1), 1.0, atol=1e-5)


def test_similar_users_are_closer_than_dissimilar_ones(trained):
    docs = user_docs(120, seed=2)
    clusters = np.array([(doc["categories"][0] - 10) // 4 for doc in docs])
    vectors = trained.users.rows([doc["_id"] for doc in docs])
    cosine = vectors @ vectors.T
    same = clusters[:, None] == clusters[None, :]
    np.fill_diagonal(same, False)
    different = clusters[:, None] != clusters[None, :]

    assert cosine[same].mean() > cosine[different].mean() + 0.2


def test_rows_follow_the_asked_order(trained):
    rows = trained.services.rows(np.array([5, 1, 5]))

    np.testing.assert_array_equal(rows, trained.services.matrix[[4, 0, 4]])


def test_ids_added_after_training_are_encoded_on_demand_once(trained):
    newcomer = {"_id": 7777, "categories": [10, 11], "scientific_domains": [100]}
    get_db().user.insert_one(newcomer)
    table = trained.users
    reads = []
    reader = table._reader
    table._reader = lambda entity, ids: reads.append(list(ids)) or reader(entity, ids)

    rows = table.rows([1000, 7777, 123456, -1])
    again = table.rows([7777, 123456])

    assert reads == [[7777, 123456]]  # one read, only the unknown, existing-looking ids
    np.testing.assert_allclose(rows[1], trained.encode_users([newcomer])[0], atol=1e-6)
    assert np.linalg.norm(rows[1]) == pytest.approx(1.0, abs=1e-5)
    assert not rows[2].any() and not rows[3].any()  # exist nowhere: zeros
    np.testing.assert_array_equal(again, rows[1:3])
    np.testing.assert_array_equal(rows[0], table.matrix[0])


def test_encode_services_ignores_unknown_feature_values(trained):
    known = {"categories": [10, 11], "countries": ["PL"], "resource_organisation": 500}
    with_unknown = {**known, "categories": [10, 11, 9999], "countries": ["PL", "XX"]}

    vectors = trained.encode_services([known, with_unknown, {}])

    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    assert not vectors[2].any()


def test_embeddings_are_one_bulk_model_version_not_document_writes(trained):
    (version,) = ModelVersion.objects(name="embeddings")
    assert version.status == "live" and version.config["autoencoders_version"] == 1
    assert version.size_bytes > 121 * 64 * 4 + 60 * 128 * 4
    # The catalogue documents are untouched: no per-document vector fields.
    assert set(get_db().user.find_one({"_id": 1000})) == {
        "_id",
        "categories",
        "scientific_domains",
        "accessed_services",
    }


def test_cached_per_version_and_catalogue(trained):
    assert load_embeddings() is trained

    stamps.bump(stamps.CATALOGUE)
    rebuilt = load_embeddings()

    assert rebuilt is not trained and rebuilt.version == trained.version
    assert train_embeddings(env(), seed=3).status == "promoted"
    assert load_embeddings().version == trained.version + 1


def test_no_embeddings_without_autoencoders(app):
    insert_catalogue(users=10, services=10)

    outcome = train_embeddings(env())

    assert outcome.status == "skipped" and "autoencoders" in outcome.reason
    assert load_embeddings() is None


def test_empty_catalogue_after_ae_is_rejected_and_previous_stays(trained):
    get_db().service.delete_many({})

    outcome = train_embeddings(env())

    assert outcome.status == "rejected" and outcome.reason == "no services in the catalogue"
    assert model_store.live_version("embeddings").version == trained.version


def test_chain_stages_train_a_tiny_catalogue_end_to_end(app):
    insert_catalogue(users=12, services=10)

    outcomes = [train_stage(name, 4, False) for name in ("ae", "embedding")]

    assert [o.status for o in outcomes] == ["promoted", "promoted"], outcomes
    embeddings = load_embeddings()
    assert embeddings.users.matrix.shape == (12, 64)
    assert embeddings.services.matrix.shape == (10, 128)


def load_embeddings():
    """The live embeddings as serving reads them (through the app's model cache)."""
    return cached_embeddings(runtime().deps.models)
