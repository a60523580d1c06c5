"""Writing synthetic data: the dump as `/update` loads it, sessions in bulk and once."""

from __future__ import annotations

import pytest
from pymongo.errors import DuplicateKeyError

from recommender.models import Recommendation, Service, User, UserAction, action_fingerprint
from recommender.synthetic import generate_marketplace, generate_sessions
from recommender.synthetic.writer import write_marketplace, write_sessions
from tests.app_helpers import use_stages


@pytest.fixture(scope="module")
def dump() -> dict:
    return generate_marketplace(users=60, services=40, seed=11)


@pytest.fixture(scope="module")
def sessions(dump):
    return generate_sessions(dump, sessions=60, seed=11)


def test_write_marketplace_loads_the_whole_dump(app, dump):
    report = write_marketplace(dump)
    assert report["dropped_references"] == {}
    assert report["counts"] == {key: len(items) for key, items in dump.items()}
    assert sorted(s.id for s in Service.objects.only("id")) == [s["id"] for s in dump["services"]]
    assert User.objects(synthetic=True).count() == len(dump["users"])
    first = dump["users"][0]
    assert User.objects.get(id=first["id"]).accessed_services == first["accessed_services"]


def test_write_sessions_stores_each_once(app, dump, sessions):
    recommendations, actions = sessions
    write_marketplace(dump)
    assert write_sessions(recommendations[:5], actions[:7]) == (5, 7)
    # Only what is not stored yet is written and counted.
    assert write_sessions(recommendations, actions) == (len(recommendations) - 5, len(actions) - 7)
    assert write_sessions(recommendations, actions) == (0, 0)
    assert Recommendation.objects.count() == len(recommendations)
    assert UserAction.objects.count() == len(actions)
    # Each action is stored under its fingerprint, and the database refuses a second copy.
    collection = UserAction._get_collection()
    stored = collection.find_one()
    assert stored["_id"] == action_fingerprint(UserAction._from_son(stored))
    with pytest.raises(DuplicateKeyError):
        collection.insert_one({**stored, "channel": "databus"})


def test_stored_sessions_are_what_the_api_stores(app, client, dump, sessions):
    recommendations, actions = sessions
    write_sessions(recommendations, actions)
    rec = Recommendation.objects.get(visit_id=recommendations[0]["visit_id"])
    assert rec.services == recommendations[0]["services"]
    assert rec.timestamp == recommendations[0]["timestamp"]
    stored = UserAction.objects.get(target__visit_id=actions[0]["target"]["visit_id"])
    root = actions[0]["source"]["root"]
    assert stored.source.root.service == root["resource_id"]
    assert stored.channel == "http"
    assert stored.user == actions[0].get("user_id")
    # The same action posted over HTTP has the same fingerprint: it is not stored twice.
    response = client.post("/user_actions", json=actions[0])
    assert response.status_code == 204
    assert UserAction.objects.count() == len(actions)


def test_generated_dump_loads_through_post_update(client, monkeypatch, dump):
    use_stages(monkeypatch, {})  # loading only: training is tested apart
    response = client.post("/update", json=dump)
    assert response.status_code == 202, response.get_json()
    status = client.get(f"/update/{response.get_json()['task_id']}").get_json()
    assert status["status"] == "succeeded", status
    assert status["report"]["counts"] == {key: len(items) for key, items in dump.items()}
    assert status["report"]["dropped_references"] == {}
    assert Service.objects(status="draft").count() == sum(
        s["status"] == "draft" for s in dump["services"]
    )
