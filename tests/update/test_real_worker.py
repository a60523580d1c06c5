"""A real Celery worker on the real Redis broker runs the update (not eagerly).

The mongomock store lives in this process, so the worker runs here too, in a thread, consuming
its own queue so that no other worker on the same Redis can take the task.
"""

from __future__ import annotations

import logging
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker

from recommender.models import Service
from tests.app_helpers import use_stages
from tests.marketplace_dump import marketplace_dump

pytestmark = pytest.mark.redis


@pytest.fixture
def worker_app(monkeypatch):
    from recommender import create_app
    from recommender.celery_app import celery

    app = create_app(
        "testing", MONGODB_HOST="mongomock", CELERY_TASK_ALWAYS_EAGER=False, RS_API_TOKEN=None
    )
    queue = f"test-update-{uuid.uuid4()}"
    previous_queue = celery.conf.task_default_queue
    celery.conf.task_default_queue = queue
    root_level = logging.getLogger().level  # the test worker sets up Celery's logging
    with app.app_context():
        use_stages(monkeypatch, {})  # loading is what this test is about
        with start_worker(
            celery, queues=[queue], perform_ping_check=False, pool="solo", shutdown_timeout=10
        ):
            yield app
    celery.conf.task_default_queue = previous_queue
    celery.conf.task_always_eager = True
    logging.getLogger().setLevel(root_level)


def wait_for_status(client, task_id: str, timeout_s: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout_s
    seen = []
    while time.monotonic() < deadline:
        status = client.get(f"/update/{task_id}").get_json()
        seen.append(status["status"])
        if status["status"] in {"succeeded", "failed"}:
            return {**status, "seen": seen}
        time.sleep(0.05)
    raise AssertionError(f"update did not finish; states seen: {sorted(set(seen))}")


def test_worker_on_redis_loads_the_dump(worker_app):
    client = worker_app.test_client()
    first = marketplace_dump(n_services=12, n_users=11)
    response = client.post("/update", json=first)
    assert response.status_code == 202
    assert response.get_json()["status"] in {"queued", "running", "succeeded"}
    status = wait_for_status(client, response.get_json()["task_id"])
    assert status["status"] == "succeeded", status
    assert Service.objects.count() == 12

    second = marketplace_dump(n_services=4, n_users=2)
    response = client.post("/update?force=true", json=second)  # removes most: forced
    status = wait_for_status(client, response.get_json()["task_id"])
    assert status["status"] == "succeeded"
    assert sorted(s.id for s in Service.objects.only("id")) == [s["id"] for s in second["services"]]
