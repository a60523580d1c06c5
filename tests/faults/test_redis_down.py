"""Redis down (the app pointed at a port where nothing listens, with a real Celery client):
serving and ingestion go on, `POST /update` is a clear 503 and nothing is half-accepted."""

from __future__ import annotations

import pytest

from recommender.models import Service, UpdateTask
from recommender.models.activity import Recommendation, UserAction
from recommender.services.bookkeeping import writer
from recommender.services.update import QUEUE_UNREACHABLE
from recommender.store import get_db
from tests.api.helpers import body
from tests.conftest import build_app
from tests.faults.helpers import free_port, serving
from tests.marketplace_dump import marketplace_dump
from tests.user_actions.payloads import user_action


@pytest.fixture
def redis_down_app(store_overrides):
    from recommender.celery_app import celery

    redis_down = {"REDIS_HOST": f"127.0.0.1:{free_port()}", "CELERY_TASK_ALWAYS_EAGER": False}
    app = build_app(store_overrides, **redis_down)
    with app.app_context():
        yield app
    celery.conf.task_always_eager = True


def test_serving_and_ingestion_answer_and_update_is_a_503(redis_down_app):
    client = redis_down_app.test_client()
    serving(client)
    marketplace = client.post("/recommendations", json=body(client_id="marketplace"))
    assert marketplace.status_code == 200
    assert client.post("/user_actions", json=user_action()).status_code == 204
    writer.flush()
    assert UserAction.objects.count() == 1
    # Stored, waiting in the outbox for a worker once Redis (and so beat and the worker) is back.
    assert Recommendation.objects(published=False).count() == 2
    services = Service.objects.count()

    response = client.post("/update", json=marketplace_dump(n_services=30))
    assert response.status_code == 503
    assert response.get_json() == {"message": QUEUE_UNREACHABLE}
    [task] = UpdateTask.objects
    assert (task.status, task.reason) == ("failed", QUEUE_UNREACHABLE)
    dumps = {"filename": {"$regex": "^dump-"}}
    assert get_db()["fs.files"].count_documents(dumps) == 0  # the stored dump was removed
    assert Service.objects.count() == services

    health = client.get("/health")
    assert health.status_code == 503
    assert health.get_json()["celery_worker"]["status"] == "DOWN"
