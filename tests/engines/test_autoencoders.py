"""Features (multi-hot from ids) and the "ae" stage: training, storage, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.engines.autoencoders.features import (
    SERVICE_FIELDS,
    USER_FIELDS,
    Vocabulary,
    columns,
    read_entities,
)
from recommender.engines.autoencoders.model import Shape, TrainConfig, fit
from recommender.engines.autoencoders.pipeline import AEConfig, AEPipeline, train_ae
from recommender.engines.base import model_store
from recommender.extensions import get_db
from recommender.models.ops import ModelVersion, PipelineMetadata
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
    cols = columns(user_docs(3), USER_FIELDS)
    matrix = Vocabulary.fit(cols).transform(cols)
    import torch

    result = fit(
        matrix[:2],
        matrix[2:],
        Shape(matrix.shape[1], 4, 8),
        TrainConfig(max_epochs=6, batch_size=1, patience=2),
        torch.device("cpu"),
        torch.Generator().manual_seed(0),
    )

    assert result.best_val_loss == min(result.history["val_loss"] + [result.untrained_val_loss])
    assert result.best_val_loss < result.untrained_val_loss


@pytest.mark.parametrize(("users", "services"), [(12, 10), (300, 120)])
def test_ae_trains_and_stores_both_encoders(app, users, services):
    insert_catalogue(users=users, services=services)

    outcome = AEPipeline(FAST).run(seed=5)

    assert outcome.status == "promoted", outcome.reason
    for entity in ("users", "services"):
        m = outcome.metrics[entity]
        assert m["val_loss"] < m["untrained_val_loss"]
    stored = model_store.load("autoencoders")
    assert stored.config["users"] == {
        "features": stored.config["users"]["features"],
        "dim": 64,
        "hidden": 128,
    }
    assert stored.config["services"]["dim"] == 128
    assert set(stored.tensors["services"]["vocabulary"]) == set(SERVICE_FIELDS)
    assert (
        stored.tensors["users"]["state"]["encoder.inputs.weight"].shape[0]
        == (stored.config["users"]["features"])
    )
    train_step = PipelineMetadata.objects.get(pipeline="AE").steps[3]
    assert train_step.details["users"]["epochs"] >= 1


def test_loss_decreases_over_training(app):
    insert_catalogue(users=300, services=120)

    outcome = AEPipeline(FAST).run(seed=1)

    steps = PipelineMetadata.objects.get(pipeline="AE").steps
    details = steps[4].details
    assert outcome.status == "promoted"
    for entity in ("users", "services"):
        curve = steps[3].details[entity]["train_loss_curve"]
        assert curve[-1] < 0.8 * curve[0]
        assert details[entity]["val_loss"] < details[entity]["untrained_val_loss"]
        # Better than predicting each feature's frequency: it learned co-occurrence.
        assert details[entity]["val_loss"] < details[entity]["frequency_baseline_val_loss"]


def test_same_seed_same_encoders(app):
    insert_catalogue(users=40, services=30)
    versions = [AEPipeline(FAST).run(seed=9).model_version for _ in range(2)]

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

    outcome = train_ae(seed=1)

    assert outcome.status == "rejected"
    assert reason in outcome.reason
    assert ModelVersion.objects.count() == 0
    assert PipelineMetadata.objects.get(pipeline="AE").reason == outcome.reason


def test_rows_without_features_are_left_out_of_training(app):
    featureless = [{"_id": 5000 + i, "categories": [], "scientific_domains": []} for i in range(7)]
    insert(user_docs(20) + featureless, service_docs(20))

    outcome = AEPipeline(FAST).run(seed=1)

    assert outcome.status == "promoted"
    steps = PipelineMetadata.objects.get(pipeline="AE").steps
    assert steps[1].details["users"]["without_features"] == 7
    assert steps[2].details["users"]["train"] + steps[2].details["users"]["valid"] == 20
