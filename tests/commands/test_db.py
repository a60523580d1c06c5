"""`flask db drop_mp | drop_models | regenerate_sarses`."""

from __future__ import annotations

import pytest
import torch

import recommender.sessions
from recommender.model_store import versions as model_store
from recommender.models import DUMP_ENTITIES, ModelVersion, Service
from recommender.store import get_db, stamps


def fill_catalogue() -> None:
    db = get_db()
    for document in DUMP_ENTITIES.values():
        db[document._get_collection_name()].insert_many([{"_id": 1}, {"_id": 2}])


def catalogue_size() -> int:
    db = get_db()
    return sum(db[d._get_collection_name()].count_documents({}) for d in DUMP_ENTITIES.values())


def test_drop_mp_empties_the_catalogue_and_bumps_its_stamp(cli):
    fill_catalogue()
    before = stamps.read_all().get(stamps.CATALOGUE, 0)

    result = cli("db", "drop_mp", "--yes")

    assert result.exit_code == 0, result.output
    assert catalogue_size() == 0
    assert stamps.read_all()[stamps.CATALOGUE] == before + 1


def test_drop_mp_asks_first(cli):
    fill_catalogue()

    declined = cli("db", "drop_mp", input="n\n")
    assert declined.exit_code == 1
    assert catalogue_size() == 2 * len(DUMP_ENTITIES)

    accepted = cli("db", "drop_mp", input="y\n")
    assert accepted.exit_code == 0
    assert catalogue_size() == 0


def save_model() -> None:
    model_store.promote(model_store.save_candidate("ncf", {"weight": torch.ones(3)}))


def model_count() -> int:
    return ModelVersion.objects.count()


@pytest.mark.parametrize(
    ("command", "fill", "size"),
    [("drop_mp", fill_catalogue, catalogue_size), ("drop_models", save_model, model_count)],
)
def test_destructive_commands_are_refused_in_production_without_force(
    app, cli, command, fill, size
):
    fill()
    app.config["ENV_NAME"] = "production"

    refused = cli("db", command, "--yes")

    assert refused.exit_code != 0
    assert "production" in refused.output and "--force" in refused.output
    assert size() > 0
    assert cli("db", command, "--yes", "--force").exit_code == 0
    assert size() == 0


def test_drop_models_deletes_every_version_and_its_weights(cli):
    for name in ("ncf", "popularity"):
        model = model_store.save_candidate(name, {"weight": torch.ones(3)})
        model_store.promote(model)
    model_store.save_candidate("ncf", {"weight": torch.zeros(3)})
    Service(id=1, name="kept").save()

    result = cli("db", "drop_models", "--yes")

    assert result.exit_code == 0, result.output
    assert "3 model version(s)" in result.output
    assert ModelVersion.objects.count() == 0
    assert get_db()["fs.files"].count_documents({}) == 0
    assert Service.objects.count() == 1


def test_regenerate_sarses_prints_the_counts_on_an_empty_store(cli):
    result = cli("db", "regenerate_sarses")

    assert result.exit_code == 0, result.output
    assert "recommendations: 0" in result.output
    assert "sarses: 0" in result.output


def test_regenerate_sarses_full_rebuilds_everything(cli, monkeypatch):
    calls = []

    def regenerate(full: bool = False) -> dict:
        calls.append(full)
        return {"sarses": 5}

    monkeypatch.setattr(recommender.sessions, "regenerate_sarses", regenerate)

    result = cli("db", "regenerate_sarses", "--full")

    assert result.exit_code == 0
    assert calls == [True]
    assert "sarses: 5" in result.output


def test_every_command_explains_itself(cli):
    for command in ("drop_mp", "drop_models", "regenerate_sarses"):
        result = cli("db", command, "--help")
        assert result.exit_code == 0
        assert len(result.output.split("\n\n")[1].split()) >= 8, command
