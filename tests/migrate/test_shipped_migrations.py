"""The migrations shipped in recommender/migrate/migrations/."""

from __future__ import annotations

import datetime as dt
import importlib.util
import uuid

from recommender.migrate import DEFAULT_DIR, Runner
from recommender.migrate.runner import load_migration
from recommender.models.activity import (
    Action,
    Recommendation,
    Root,
    Source,
    Target,
    UserAction,
    action_fingerprint,
)
from recommender.models.ops import PipelineMetadata, UpdateTask
from recommender.models.traffic import RecommendationTraffic, UserActionTraffic
from recommender.store import get_db

TRAFFIC = (RecommendationTraffic, UserActionTraffic)

NORMALISE = "20261126080100_normalise_panel_root_type"
DASHBOARD = "20261204100000_index_dashboard_reads"


def test_the_shipped_folder_is_consistent_and_each_file_loads(app):
    runner = Runner(DEFAULT_DIR)

    report = runner.check()

    assert report.ok, report.problems()
    assert report.pending == sorted(runner.files())
    for migration in runner.files().values():
        assert load_migration(migration.path, get_db()).db is get_db()


def test_apply_creates_every_declared_index_and_rollback_drops_them(app):
    cli = app.test_cli_runner()
    db = get_db()
    visits = "source.visit_id_1_source.root.service_1"
    assert visits not in db.user_action.index_information()

    assert cli.invoke(args=["migrate", "apply"]).exit_code == 0
    indexes = db.user_action.index_information()
    assert visits in indexes
    assert "name_1_version_1" in db.model_version.index_information()
    assert "received_at_1" in indexes
    assert "experiment_1_served_at_1" in db.recommendation.index_information()
    # The fingerprint is the `_id`: no unique secondary index to build or check on insert.
    assert not any(spec.get("unique") for spec in indexes.values())

    assert "published_1" in db.recommendation.index_information()  # the databus outbox

    assert cli.invoke(args=["migrate", "rollback"]).exit_code == 0  # experiments' indexes
    assert "experiment_1_served_at_1" not in db.recommendation.index_information()
    assert cli.invoke(args=["migrate", "rollback"]).exit_code == 0  # dashboard reads
    assert cli.invoke(args=["migrate", "rollback"]).exit_code == 0  # outbox index
    assert "published_1" not in db.recommendation.index_information()
    assert cli.invoke(args=["migrate", "rollback"]).exit_code == 0  # normalise: no-op
    assert cli.invoke(args=["migrate", "rollback"]).exit_code == 0  # indexes
    assert visits not in db.user_action.index_information()
    assert "name_1_version_1" not in db.model_version.index_information()


def test_the_dashboard_indexes_are_the_models_own_and_come_and_go(app):
    db = get_db()
    spec = importlib.util.spec_from_file_location(DASHBOARD, DEFAULT_DIR / f"{DASHBOARD}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    migration = module.IndexDashboardReads(db)
    declared = {
        document._get_collection_name(): document._meta["index_specs"]
        for document in (Recommendation, PipelineMetadata, UpdateTask, *TRAFFIC)
    }
    for collection, keys, options in module.INDEXES:
        assert {"fields": keys, **options} in declared[collection]

    migration.down()
    names = {(collection, module.name_of(keys)) for collection, keys, _ in module.INDEXES}
    assert not any(name in db[collection].index_information() for collection, name in names)
    migration.up()
    migration.up()  # again: nothing to do
    for collection, keys, options in module.INDEXES:
        index = db[collection].index_information()[module.name_of(keys)]
        assert index["key"] == keys
        assert {key: index.get(key) for key in options} == options


def stored_action(root_type: str, page: str, unique_id: str) -> dict:
    """A user action as stored, fingerprinted with the root type it was stored with."""
    action = UserAction(
        unique_id=unique_id,
        timestamp=dt.datetime(2024, 2, 21, 15, 19, 43),
        source=Source(
            visit_id="8c5a2d6e-0000-4000-8000-000000000001",
            page_id=page,
            root=Root(type=root_type, service=7),
        ),
        target=Target(visit_id="8c5a2d6e-0000-4000-8000-000000000002", page_id="/services/7"),
        action=Action(type="browser action", text="Details", order=False),
    )
    action.fingerprint = action_fingerprint(action)
    return action.to_mongo().to_dict()


def test_legacy_panel_root_types_get_the_current_spelling_and_fingerprint(app):
    actions = get_db().user_action
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    legacy = stored_action("recommendation-panel", "/services", first)
    current = stored_action("recommendation_panel", "/dashboard", second)
    duplicate = stored_action("recommendation-panel", "/dashboard", second)  # same as current
    other = stored_action("other_list", "/services", third)
    actions.insert_many([legacy, duplicate, current, other])

    load_migration(DEFAULT_DIR / f"{NORMALISE}.py", get_db()).up()

    stored = {doc["_id"]: doc for doc in actions.find()}
    # The legacy action lives on under its recomputed fingerprint (the `_id`); its duplicate
    # of `current` is deleted; the others are untouched.
    renamed = stored_action("recommendation_panel", "/services", first)
    assert renamed["_id"] != legacy["_id"]
    assert set(stored) == {renamed["_id"], current["_id"], other["_id"]}
    assert stored[renamed["_id"]] == renamed
    assert stored[current["_id"]] == current
    assert stored[other["_id"]] == other
