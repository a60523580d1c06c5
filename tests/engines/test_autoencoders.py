"""Features (multi-hot from ids) and the "ae" stage: training, storage, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recommender.engines.autoencoders.features import (
    SERVICE_FIELDS,
    USER_FIELDS,
    Vocabulary,
    columns,
    read_entities,
)
from recommender.engines.autoencoders.model import Shape, TrainConfig, fit, mean_loss
from recommender.engines.autoencoders.pipeline import AEConfig, AEPipeline, train_ae
from recommender.model_store import versions as model_store
from recommender.models.ops import ModelVersion, PipelineMetadata
from recommender.store import get_db
from tests.app_helpers import env
from tests.engines.ae_catalogue import insert_catalogue, service_docs, user_docs

FAST = AEConfig(train=TrainConfig(max_epochs=15, patience=3))


def test_resource_organisation_is_one_value_not_its_characters():
    docs = [{"resource_organisation": 1234}, {"resource_organisation": 56}, {}]
    vocabulary = Vocabulary.fit(columns(docs, ["resource_organisation"]))

    assert vocabulary.fields["resource_organisation"].tolist() == [56, 1234]
    matrix = vocabulary.transform(columns(docs, ["resource_organisation"])).toarray()
    assert matrix.tolist() == [[0, 1], [1, 0], [0, 0]]


def test_fields_have_separate_columns_and_unknown_values_are_ignored():
    train = [{"categories": [1, 2], "scientific_domains": [1]}, {"categories": [2, 2]}]
    vocabulary = Vocabulary.fit(columns(train, USER_FIELDS))
    assert vocabulary.sizes() == {"categories": 2, "scientific_domains": 1}

    later = [{"categories": [2, 99], "scientific_domains": [1, 77]}, {"categories": None}]
    matrix = vocabulary.transform(columns(later, USER_FIELDS))

    # Columns: categories 1, categories 2, scientific_domains 1; 99 and 77 were never seen.
    assert matrix.dtype == np.float32
    assert matrix.toarray().tolist() == [[0, 1, 1], [0, 0, 0]]
    assert vocabulary.transform(columns(train, USER_FIELDS)).toarray().tolist() == [
        [1, 1, 1],
        [0, 1, 0],
    ]


def test_vocabulary_round_trips_through_plain_lists():
    docs = service_docs(30)
    vocabulary = Vocabulary.fit(columns(docs, SERVICE_FIELDS))
    again = Vocabulary.from_state(vocabulary.to_state())

    assert list(again.fields) == list(SERVICE_FIELDS)
    assert again.to_state()["countries"] == ["DE", "FR", "IT", "PL"]
    cols = columns(docs, SERVICE_FIELDS)
    assert (again.transform(cols) != vocabulary.transform(cols)).nnz == 0


def test_read_entities_reads_ids_sorted_with_features(app):
    insert_catalogue(users=5, services=4)

    users = read_entities("users")

    assert users.ids.tolist() == [1000, 1001, 1002, 1003, 1004]
    assert users.cols["categories"].lengths.tolist() == [2, 2, 2, 2, 2]
    assert read_entities("services", [3, 1, 404]).ids.tolist() == [1, 3]


def test_training_batch_of_one_row_works_and_keeps_best_weights():
    cols = columns(user_docs(60), USER_FIELDS)
    matrix = Vocabulary.fit(cols).transform(cols)
    # Six training rows, many epochs, a high rate: it overfits after a few epochs.
    config = TrainConfig(max_epochs=40, batch_size=1, patience=40, lr=0.03, min_abs_delta=0.0)

    result = fit(
        matrix[:6],
        matrix[40:],
        Shape(matrix.shape[1], 4, 8),
        config,
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )

    assert config.batch_for(6) == 1  # steps of one row each: no normalisation to break
    val = result.history["val_loss"]
    # Gains below the early-stopping threshold do not move the best epoch.
    assert result.best_val_loss == pytest.approx(min([*val, result.untrained_val_loss]), abs=0.05)
    assert result.best_epoch < result.epochs and val[-1] > result.best_val_loss
    # The returned weights are the best epoch's, not the last one's.
    returned = mean_loss(result.model, matrix[40:], 7, torch.device("cpu"))
    assert returned == pytest.approx(result.best_val_loss, rel=1e-5)


def test_tiny_catalogue_trains_every_epoch_and_is_not_judged_on_two_rows(app):
    insert_catalogue(users=12, services=10)

    outcome = AEPipeline(FAST).run(env(), seed=5)

    assert outcome.status == "promoted", outcome.reason
    train = PipelineMetadata.objects.get(pipeline="AE").steps[3].details
    for entity in ("users", "services"):
        assert outcome.metrics[entity]["valid_rows"] == 1
        assert outcome.metrics[entity]["judged_on_validation"] is False
        assert train[entity]["epochs"] == FAST.train.max_epochs
        curve = train[entity]["train_loss_curve"]
        assert curve[-1] < 0.5 * curve[0]


def test_ae_learns_structure_and_stores_both_encoders(app):
    insert_catalogue(users=400, services=350)

    outcome = AEPipeline(FAST).run(env(), seed=1)

    assert outcome.status == "promoted", outcome.reason
    steps = PipelineMetadata.objects.get(pipeline="AE").steps
    for entity in ("users", "services"):
        m = outcome.metrics[entity]
        assert m["judged_on_validation"] and m["valid_rows"] >= 30
        # The untrained network predicts feature frequencies; beating it on the whole
        # validation split means it learned which features go together.
        assert m["val_loss"] < 0.8 * m["untrained_val_loss"]
        assert m["untrained_val_loss"] == pytest.approx(m["frequency_baseline_val_loss"], rel=0.05)
        curve = steps[3].details[entity]["train_loss_curve"]
        assert curve[-1] < curve[0]
    stored = model_store.load("autoencoders")
    assert stored.config["users"]["dim"] == 64 and stored.config["services"]["dim"] == 128
    assert set(stored.tensors["services"]["vocabulary"]) == set(SERVICE_FIELDS)
    weights = stored.tensors["users"]["state"]["encoder.inputs.weight"]
    assert weights.shape == (stored.config["users"]["features"], stored.config["users"]["hidden"])


def test_ae_that_learned_nothing_is_rejected_and_previous_stays_live(app):
    insert_catalogue(users=400, services=350)
    assert AEPipeline(FAST).run(env(), seed=1).status == "promoted"

    untrained = AEConfig(train=TrainConfig(max_epochs=0))
    outcome = AEPipeline(untrained).run(env(), seed=1)

    assert outcome.status == "rejected"
    assert "users: validation loss" in outcome.reason and "does not beat" in outcome.reason
    assert model_store.live_version("autoencoders").version == 1
    assert ModelVersion.objects.get(name="autoencoders", version=2).status == "rejected"


def test_same_seed_same_encoders(app):
    insert_catalogue(users=40, services=30)
    versions = [AEPipeline(FAST).run(env(), seed=9).model_version for _ in range(2)]

    first, second = (model_store.load("autoencoders", v).tensors for v in versions)
    for entity in ("users", "services"):
        for key, tensor in first[entity]["state"].items():
            assert (tensor == second[entity]["state"][key]).all(), key


def insert(users: list[dict], services: list[dict]) -> None:
    db = get_db()
    if users:
        db.user.insert_many(users)
    if services:
        db.service.insert_many(services)


@pytest.mark.parametrize(
    ("users", "services", "reason"),
    [
        (user_docs(10), service_docs(1), "services: 1 of 1 have any of"),
        (user_docs(10), [], "services: 0 of 0"),
        (
            [{"_id": i, "categories": [], "scientific_domains": []} for i in range(5)],
            service_docs(10),
            "users: 0 of 5 have any of categories, scientific_domains",
        ),
        (
            [{"_id": i, "categories": [3]} for i in range(5)],
            service_docs(10),
            "users: 1 distinct feature value(s)",
        ),
    ],
    ids=["one-service", "no-services", "users-without-features", "one-feature"],
)
def test_bad_catalogue_is_rejected_with_reason_and_no_model(app, users, services, reason):
    insert(users, services)

    outcome = train_ae(env(), seed=1)

    assert outcome.status == "rejected"
    assert reason in outcome.reason
    assert ModelVersion.objects.count() == 0
    assert PipelineMetadata.objects.get(pipeline="AE").reason == outcome.reason


def test_rows_without_features_are_left_out_of_training(app):
    featureless = [{"_id": 5000 + i, "categories": [], "scientific_domains": []} for i in range(7)]
    insert(user_docs(20) + featureless, service_docs(20))

    outcome = AEPipeline(FAST).run(env(), seed=1)

    assert outcome.status == "promoted"
    steps = PipelineMetadata.objects.get(pipeline="AE").steps
    assert steps[1].details["users"]["without_features"] == 7
    assert steps[2].details["users"]["train"] + steps[2].details["users"]["valid"] == 20
