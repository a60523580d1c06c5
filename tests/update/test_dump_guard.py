"""The dump guard: a dump that would empty or gut the live catalogue is refused (409) with the
numbers, recorded, and loaded only when forced; the first dump into an empty store passes."""

from __future__ import annotations

import pytest

from recommender.engines.popularity.pipeline import train as train_popularity
from recommender.models import ModelVersion, Service, UpdateTask, User, VersionStamp
from recommender.services import update
from tests.api.helpers import body, load, recommendable_ids
from tests.app_helpers import change_settings, env
from tests.marketplace_dump import marketplace_dump

EMPTY = {key: [] for key in marketplace_dump()}


def snapshot() -> dict:
    return {
        "services": sorted(s.id for s in Service.objects.only("id")),
        "users": sorted(u.id for u in User.objects.only("id")),
        "catalogue": VersionStamp.objects.get(name="catalogue").version,
        "models": sorted((m.name, m.version, m.status) for m in ModelVersion.objects),
    }


@pytest.fixture
def live(client):
    """A loaded catalogue and a live Popularity model."""
    dump = load()
    train_popularity(env())
    return dump


def without_recommendable(dump: dict, count: int) -> dict:
    """`dump` less its first `count` recommendable services."""
    dropped = sorted(recommendable_ids(dump))[:count]
    dump["services"] = [s for s in dump["services"] if s["id"] not in dropped]
    return dump


def test_an_empty_dump_is_refused_and_the_catalogue_keeps_serving(client, live):
    before = snapshot()
    response = client.post("/update", json=EMPTY)
    assert response.status_code == 409
    answer = response.get_json()
    live_services = len(recommendable_ids(live))
    assert answer["live"] == {"recommendable_services": live_services, "users": len(live["users"])}
    assert answer["dump"] == {"recommendable_services": 0, "users": 0}
    assert answer["removed"] == answer["live"]
    assert answer["max_removed_share"] == 0.5
    assert "the dump holds no recommendable service" in answer["problems"]
    assert "?force=true" in answer["message"]
    assert snapshot() == before
    recorded = client.get(f"/update/{answer['task_id']}").get_json()
    assert recorded["status"] == "refused"
    assert recorded["reason"].startswith("Dump refused: the dump holds no recommendable service")
    assert recorded["report"]["guard"]["live"] == answer["live"]
    served = client.post("/recommendations", json=body(engine_version="Popularity"))
    assert len(served.get_json()["recommendations"]) == 3


def test_removing_more_than_half_the_recommendable_services_is_refused(client, live):
    live_services = len(recommendable_ids(live))
    removed = live_services // 2 + 1
    dump = without_recommendable(marketplace_dump(), removed)
    answer = client.post("/update", json=dump).get_json()
    assert answer["removed"] == {"recommendable_services": removed, "users": 0}
    assert answer["problems"] == [
        f"it would remove {removed} of the {live_services} live recommendable services "
        f"({removed / live_services:.0%}, more than 50%)"
    ]
    assert UpdateTask.objects.get(task_id=answer["task_id"]).status == "refused"


def test_removing_more_than_half_the_users_is_refused(client, live):
    dump = marketplace_dump(n_users=7)  # 8 of the 15 users gone
    response = client.post("/update", json=dump)
    assert response.status_code == 409
    assert response.get_json()["removed"]["users"] == 8
    assert "8 of the 15 live users (53%, more than 50%)" in response.get_json()["problems"][0]


def test_removing_exactly_the_share_is_accepted(client, live):
    dump = without_recommendable(marketplace_dump(), len(recommendable_ids(live)) // 2)
    response = client.post("/update", json=dump)
    assert response.status_code == 202
    assert client.get(response.headers["Location"]).get_json()["status"] == "succeeded"


def test_the_share_is_a_setting(client, live):
    dump = without_recommendable(marketplace_dump(), len(recommendable_ids(live)) - 1)
    assert client.post("/update", json=dump).status_code == 409
    change_settings(UPDATE_MAX_REMOVED_SHARE=0.9)
    assert client.post("/update", json=dump).status_code == 202


def test_force_loads_a_refused_dump(client, live):
    dump = marketplace_dump(n_services=5, n_users=2)
    assert client.post("/update", json=dump).status_code == 409
    response = client.post("/update?force=true", json=dump)
    assert response.status_code == 202
    assert client.get(response.headers["Location"]).get_json()["status"] == "succeeded"
    assert snapshot()["services"] == sorted(s["id"] for s in dump["services"])


def test_a_force_that_is_not_a_boolean_is_a_400_naming_it(client, live):
    response = client.post("/update?force=maybe", json=EMPTY)
    assert response.status_code == 400
    assert response.get_json()["errors"] == {"force": "must be true or false"}


def test_the_first_dump_into_an_empty_store_is_never_refused(client):
    response = client.post("/update", json=EMPTY)
    assert response.status_code == 202
    assert client.get(response.headers["Location"]).get_json()["status"] == "succeeded"


def test_the_guard_checks_again_when_the_update_runs(client, live, monkeypatch):
    """Accepted against the catalogue live at the POST; refused when it runs, because an update
    loaded meanwhile made it a removal of most services."""
    from recommender import tasks

    dump = marketplace_dump()
    monkeypatch.setattr(update.celery.tasks[update.UPDATE_TASK], "apply_async", lambda **_: None)
    queued = update.submit_dump(dump, seed=1)
    assert queued.status == "queued"
    bigger = marketplace_dump(n_services=60)  # its own ids 41..119 are not in `dump`
    load(bigger)
    before = snapshot()
    assert tasks.update.apply(args=[queued.task_id]).get() == "refused"
    task = UpdateTask.objects.get(task_id=queued.task_id)
    assert task.reason.startswith("Dump refused: it would remove")
    assert task.report["guard"]["live"]["recommendable_services"] == len(recommendable_ids(bigger))
    assert snapshot() == before
