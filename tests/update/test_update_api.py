"""POST /update and GET /update/<task_id> end to end (eager tasks on the mongomock store)."""

from __future__ import annotations

import json
import threading
import time

import pytest

from recommender.engines.base.outcome import PipelineOutcome
from recommender.models import Project, Service, UpdateTask, User, VersionStamp
from recommender.services.update import UPDATE_LEASE
from recommender.store import leases
from tests.app_helpers import use_stages
from tests.marketplace_dump import marketplace_dump


def post_dump(client, dump, **kwargs):
    return client.post("/update", json=dump, **kwargs)


def catalogue_snapshot() -> dict:
    return {
        "services": sorted(s.id for s in Service.objects.only("id")),
        "users": sorted(u.id for u in User.objects.only("id")),
        "projects": sorted(p.id for p in Project.objects.only("id")),
    }


@pytest.fixture
def loaded(client):
    response = post_dump(client, marketplace_dump())
    assert response.status_code == 202, response.get_json()
    return response.get_json()


def test_valid_dump_is_loaded_and_reported(client, loaded):
    assert loaded["status"] in {"queued", "running", "succeeded"}
    status = client.get(f"/update/{loaded['task_id']}").get_json()
    assert status["status"] == "succeeded"
    report = status["report"]
    dump = marketplace_dump()
    assert report["counts"]["services"] == len(dump["services"])
    assert report["counts"]["users"] == len(dump["users"])
    assert report["counts"]["projects"] == len(dump["projects"]) - 1  # unknown owner dropped
    assert report["dropped_references"]["services.categories"] == 1
    draft = Service.objects.get(id=dump["services"][2]["id"])
    assert draft.status == "draft"
    assert draft.categories == [10]
    assert Service.objects.get(id=dump["services"][4]["id"]).description is None
    assert VersionStamp.objects.get(name="catalogue").version == 1


def test_second_dump_replaces_the_catalogue(client, loaded):
    smaller = marketplace_dump(n_services=6, n_users=3)  # removes most users: forced
    assert post_dump(client, smaller, query_string={"force": "true"}).status_code == 202
    snapshot = catalogue_snapshot()
    assert snapshot["services"] == sorted(s["id"] for s in smaller["services"])
    assert snapshot["users"] == sorted(u["id"] for u in smaller["users"])


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.pop("trls"), "trls"),
        (lambda d: d["services"][1].__setitem__("id", "3"), "services.1.id"),
        (lambda d: d["users"][2].pop("accessed_services"), "users.2.accessed_services"),
        (lambda d: d["services"].append(dict(d["services"][0])), "services.20.id"),
        (lambda d: d["providers"][0].__setitem__("name", None), "providers.0.name"),
    ],
)
def test_bad_dump_is_refused_with_the_field_and_nothing_changes(client, loaded, mutate, field):
    before = catalogue_snapshot()
    tasks_before = UpdateTask.objects.count()
    dump = marketplace_dump()
    mutate(dump)
    response = post_dump(client, dump)
    assert response.status_code == 400
    assert field in response.get_json()["errors"]
    assert catalogue_snapshot() == before
    assert UpdateTask.objects.count() == tasks_before


def test_malformed_json_is_a_client_error(client, loaded):
    before = catalogue_snapshot()
    response = client.post("/update", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert "message" in response.get_json()
    response = client.post("/update", data="x=1", content_type="text/plain")
    assert 400 <= response.status_code < 500
    assert catalogue_snapshot() == before


def test_top_level_array_is_refused(client):
    response = client.post("/update", json=[1, 2])
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"(root)": "The database dump must be a JSON object"}


def test_body_over_the_size_cap_is_413(app, client):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    body = json.dumps(marketplace_dump())
    response = client.post("/update", data=body, content_type="application/json")
    assert response.status_code == 413
    assert "1000" in response.get_json()["message"]
    assert Service.objects.count() == 0


def test_token_is_required_on_posts_when_configured(app, client):
    app.config["RS_API_TOKEN"] = "s3cret"
    assert post_dump(client, marketplace_dump()).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert post_dump(client, marketplace_dump(), headers=wrong).status_code == 401
    assert Service.objects.count() == 0
    right = {"Authorization": "Bearer s3cret"}
    assert post_dump(client, marketplace_dump(), headers=right).status_code == 202
    assert client.get("/swagger.json").status_code == 200  # reads stay open


def test_unknown_task_is_404(client):
    assert client.get("/update/does-not-exist").status_code == 404


def test_failed_training_is_recorded_and_the_load_kept(client, monkeypatch):
    def crashing(env, seed, progress):
        raise RuntimeError("boom")

    def rejecting(env, seed, progress):
        return PipelineOutcome(pipeline="fake_ok", status="rejected", reason="not better")

    use_stages(monkeypatch, {"fake_crash": crashing, "fake_reject": rejecting})
    task = post_dump(client, marketplace_dump()).get_json()
    status = client.get(f"/update/{task['task_id']}").get_json()
    assert status["status"] == "failed"
    assert status["reason"] == "fake_crash: boom"
    training = status["report"]["training"]
    assert [t["status"] for t in training] == ["failed", "rejected"]
    assert Service.objects.count() == len(marketplace_dump()["services"])


def test_failed_load_leaves_the_live_catalogue(client, loaded, monkeypatch):
    from recommender.dump import loader

    before = catalogue_snapshot()
    original = loader._write_staging

    def failing(db, document, items):
        if document is User:
            raise OSError("disk full")
        return original(db, document, items)

    monkeypatch.setattr(loader, "_write_staging", failing)
    smaller = marketplace_dump(n_services=5, n_users=2)
    task = post_dump(client, smaller, query_string={"force": "true"}).get_json()
    status = client.get(f"/update/{task['task_id']}").get_json()
    assert status["status"] == "failed"
    assert "disk full" in status["reason"]
    assert catalogue_snapshot() == before
    from recommender.store import get_db

    assert not [n for n in get_db().list_collection_names() if n.endswith("__staging")]


def test_one_update_at_a_time(client, monkeypatch):
    import recommender.tasks as tasks

    monkeypatch.setattr(tasks, "UPDATE_RETRY_S", 0.05)
    assert leases.acquire(UPDATE_LEASE, "another-update", 60)
    seen_waiting = []

    def release_later():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            waiting = UpdateTask.objects(step__startswith="waiting for update another-update")
            if waiting:
                seen_waiting.append(waiting.first().status)
                break
            time.sleep(0.02)
        leases.release(UPDATE_LEASE, "another-update")

    releaser = threading.Thread(target=release_later)
    releaser.start()
    task = post_dump(client, marketplace_dump()).get_json()
    releaser.join()
    assert seen_waiting == ["queued"]
    assert client.get(f"/update/{task['task_id']}").get_json()["status"] == "succeeded"
    assert leases.holder_of(UPDATE_LEASE) is None


def test_empty_kinds_replace_the_live_ones(client, loaded):
    dump = marketplace_dump()
    dump["projects"] = []
    dump["research_steps"] = []
    for item in dump["services"]:
        item["research_steps"] = []
    task = post_dump(client, dump).get_json()
    assert client.get(f"/update/{task['task_id']}").get_json()["status"] == "succeeded"
    assert Project.objects.count() == 0
    assert Service.objects.count() == len(dump["services"])
