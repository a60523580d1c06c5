"""Publishing served recommendations: the message arrives, and outages never slow serving."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from kombu.exceptions import OperationalError
from prometheus_client import REGISTRY

from recommender.databus import publisher
from recommender.databus.publisher import (
    Outbox,
    channel,
    publish_recommendation,
)
from recommender.databus.tasks import send_recommendation_to_databus
from recommender.services.bookkeeping import writer
from tests.api.helpers import body, load
from tests.app_helpers import change_settings
from tests.databus.bus import consumer, wait_until
from tests.databus.test_subscriber import free_port

pytestmark = pytest.mark.broker
CONTEXT = {"unique_id": str(uuid.uuid4()), "panel_id": "v1", "candidates": [1, 2, 3]}
RESPONSE = {"panel_id": "v1", "recommendations": [3, 1, 2], "engine_version": "Random"}


def dropped(reason: str) -> float:
    return (
        REGISTRY.get_sample_value("recommender_databus_publish_dropped_total", {"reason": reason})
        or 0.0
    )


def retried() -> float:
    return REGISTRY.get_sample_value("recommender_databus_publish_retries_total") or 0.0


def test_the_task_publishes_the_original_message_shape(bus_app):
    topic = bus_app.config["RS_DATABUS_PUBLISH_TOPIC"]
    with consumer(topic) as received:
        send_recommendation_to_databus.apply((CONTEXT, RESPONSE)).get()
        wait_until(lambda: received.bodies, 10, "the message")
    assert json.loads(received.bodies[0]) == {
        "recommender_system": "recommender",
        "context": CONTEXT,
        "response": RESPONSE,
    }
    assert received.headers[0]["content-type"] == "application/json"
    assert received.headers[0]["persistent"] == "true"


def test_one_connection_serves_every_publication_of_a_process(bus_app):
    topic = bus_app.config["RS_DATABUS_PUBLISH_TOPIC"]
    with consumer(topic) as received:
        send_recommendation_to_databus.apply((CONTEXT, RESPONSE)).get()
        first = channel._connection
        send_recommendation_to_databus.apply((CONTEXT, RESPONSE)).get()
        assert channel._connection is first and first.is_connected()
        wait_until(lambda: len(received.bodies) == 2, 10, "both messages")


def test_a_marketplace_request_is_published_end_to_end(bus_app):
    load()
    topic = bus_app.config["RS_DATABUS_PUBLISH_TOPIC"]
    client = bus_app.test_client()
    with consumer(topic) as received:
        other = client.post("/recommendations", json=body(client_id="search_service"))
        request = body(client_id="marketplace", panel_id="service")
        answer = client.post("/recommendations", json=request)
        assert other.status_code == answer.status_code == 200
        writer.flush()
        wait_until(lambda: received.bodies, 10, "the publication")
        time.sleep(0.2)
    [message] = [json.loads(b) for b in received.bodies]  # search_service is not published
    assert message["response"] == answer.get_json()
    assert message["context"]["unique_id"] == request["unique_id"]
    assert message["context"]["panel_id"] == "v1"  # the completed context


def test_an_unreachable_databus_never_slows_publishing(bus_app, monkeypatch):
    """Tasks run eagerly (mongomock): the first publication fails at the broker, the next ones
    are dropped at once for a while; the caller never waits."""
    change_settings(RS_DATABUS_PORT=free_port())
    monkeypatch.setattr(publisher, "outbox", Outbox(pause_s=60))
    gave_up, skipped = dropped("gave_up"), dropped("databus_unreachable")
    started = time.perf_counter()
    for _ in range(5):
        assert publish_recommendation(CONTEXT, RESPONSE) is True
    assert time.perf_counter() - started < 0.05
    assert publisher.outbox.wait_empty(30)
    assert dropped("gave_up") == gave_up + 1  # failed once, not retried eagerly
    assert dropped("databus_unreachable") == skipped + 4


def test_an_unreachable_task_queue_drops_quickly(bus_app, monkeypatch):
    """Redis down: the first hand-over fails (slowly), then publications are dropped at once
    for a while; the caller never waits."""
    calls = []

    def unreachable(*args, **kwargs):
        calls.append(args)
        time.sleep(0.3)
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(send_recommendation_to_databus, "apply_async", unreachable)
    monkeypatch.setattr(publisher, "outbox", Outbox(pause_s=60))
    before = dropped("queue_unreachable")
    started = time.perf_counter()
    for _ in range(20):
        publish_recommendation(CONTEXT, RESPONSE)
    assert time.perf_counter() - started < 0.05
    assert publisher.outbox.wait_empty(10)
    assert len(calls) == 1
    assert dropped("queue_unreachable") == before + 20


def test_a_full_outbox_drops_instead_of_growing(bus_app, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(
        send_recommendation_to_databus, "apply_async", lambda *a, **k: release.wait(10)
    )
    monkeypatch.setattr(publisher, "outbox", Outbox(size=2))
    before = dropped("backlog")
    results = [publish_recommendation(CONTEXT, RESPONSE) for _ in range(6)]
    release.set()
    assert results[:2] == [True, True]
    assert results.count(False) >= 3  # the thread took at most one off the outbox
    assert dropped("backlog") == before + results.count(False)


@pytest.mark.redis
def test_a_worker_retries_until_the_databus_is_back(bus_app):
    """A real worker on Redis: the first attempt fails (wrong port), the retry succeeds."""
    from recommender.celery_app import celery

    topic = bus_app.config["RS_DATABUS_PUBLISH_TOPIC"]
    port = bus_app.config["RS_DATABUS_PORT"]
    change_settings(RS_DATABUS_PORT=free_port())
    celery.conf.task_always_eager = False
    queue = f"test-publish-{uuid.uuid4()}"
    previous_queue = celery.conf.task_default_queue
    celery.conf.task_default_queue = queue
    try:
        with (
            consumer(topic) as received,
            start_worker(
                celery, queues=[queue], perform_ping_check=False, pool="solo", shutdown_timeout=10
            ),
        ):
            retries = retried()
            send_recommendation_to_databus.apply_async((CONTEXT, RESPONSE))
            wait_until(lambda: retried() > retries, 20, "a failed attempt")
            change_settings(RS_DATABUS_PORT=port)
            wait_until(lambda: received.bodies, 20, "the retried publication")
    finally:
        celery.conf.task_default_queue = previous_queue
        celery.conf.task_always_eager = True
        broker = redis.Redis.from_url(celery.conf.broker_url)
        for key in broker.scan_iter(f"*{queue}*"):
            broker.delete(key)
    assert json.loads(received.bodies[0])["response"] == RESPONSE
