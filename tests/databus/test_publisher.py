"""Publishing served recommendations from the stored outbox, against the real broker: each is
sent once, claims keep senders apart and expire, and a broker outage loses nothing."""

from __future__ import annotations

import json
import time
import uuid

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from prometheus_client import REGISTRY

from recommender.celery_app import PUBLISH_TASK, beat_schedule
from recommender.databus import outbox
from recommender.databus.publisher import channel, publish_pending
from recommender.databus.tasks import publish_recommendations
from recommender.models.activity import Recommendation
from recommender.services.bookkeeping import writer
from recommender.services.runtime import runtime
from tests.api.helpers import body, load
from tests.app_helpers import change_settings
from tests.databus.bus import CuttableLink, consumer, wait_until

pytestmark = pytest.mark.broker


def retried() -> float:
    return REGISTRY.get_sample_value("recommender_databus_publish_retries_total") or 0.0


def serve(app, n: int, client_id: str = "marketplace") -> list[dict]:
    """`n` answered requests of `client_id`, stored; returns (request, response) pairs."""
    client = app.test_client()
    served = []
    for _ in range(n):
        request = body(client_id=client_id, engine_version="Random")
        response = client.post("/recommendations", json=request)
        assert response.status_code == 200
        served.append({"request": request, "response": response.get_json()})
    writer.flush()
    return served


def stored(**query) -> list[dict]:
    return list(Recommendation._get_collection().find(query))


@pytest.fixture
def catalogue(bus_app):
    load()
    return bus_app


def test_a_marketplace_recommendation_is_published_once_in_the_original_shape(catalogue):
    topic = catalogue.config["RS_DATABUS_PUBLISH_TOPIC"]
    serve(catalogue, 1, "search_service")  # not the Marketplace's: never published
    [served] = serve(catalogue, 1)
    with consumer(topic) as received:
        assert publish_pending(runtime().settings) == 1
        assert publish_pending(runtime().settings) == 0  # sent: not again
        wait_until(lambda: received.bodies, 10, "the message")
        time.sleep(0.2)
    [message] = [json.loads(text) for text in received.bodies]
    assert message["recommender_system"] == "recommender"
    assert message["response"] == served["response"]
    assert message["context"]["unique_id"] == served["request"]["unique_id"]
    assert message["context"]["panel_id"] == "v1"  # the completed context
    [document] = stored(published=True)
    assert received.headers[0]["recommendation-id"] == str(document["_id"])
    assert received.headers[0]["persistent"] == "true"
    assert document["published_at"] is not None and "publish_claim" not in document
    assert stored(published=False) == []


def test_one_connection_serves_every_publication_of_a_process(catalogue):
    topic = catalogue.config["RS_DATABUS_PUBLISH_TOPIC"]
    serve(catalogue, 2)
    with consumer(topic) as received:
        assert publish_pending(runtime().settings, batch=1) == 2
        first = channel._connection
        serve(catalogue, 1)
        assert publish_pending(runtime().settings) == 1
        assert channel._connection is first and first.is_connected()
        wait_until(lambda: len(received.bodies) == 3, 10, "three messages")


def test_two_senders_never_hold_the_same_document(catalogue):
    serve(catalogue, 12)
    first_token, first = outbox.claim(8, ttl_s=60)
    second_token, second = outbox.claim(8, ttl_s=60)
    assert first_token != second_token
    assert len(first) == 8 and len(second) == 4
    assert not {d["_id"] for d in first} & {d["_id"] for d in second}
    assert outbox.claim(8, ttl_s=60)[1] == []


def test_a_dead_senders_claim_expires_and_the_next_run_sends(catalogue):
    topic = catalogue.config["RS_DATABUS_PUBLISH_TOPIC"]
    serve(catalogue, 3)
    _, held = outbox.claim(10, ttl_s=0.3)  # a sender that then died: nothing marked
    assert len(held) == 3
    assert publish_pending(runtime().settings) == 0  # still claimed
    time.sleep(0.4)
    with consumer(topic) as received:
        assert publish_pending(runtime().settings) == 3
        wait_until(lambda: len(received.bodies) == 3, 10, "the expired claims' messages")
    assert len(stored(published=True)) == 3


def test_the_broker_gone_while_publishing_loses_nothing_and_serving_goes_on(catalogue, monkeypatch):
    """The network to the broker is cut after five messages of a batch of twenty (a forwarder
    that then closes its connections and refuses new ones): those five are marked published,
    the other fifteen go back to the outbox (counted as retries). While the broker stays
    unreachable serving answers as before; once it is back, the fifteen are sent, and each of
    the twenty arrives exactly once."""
    topic = catalogue.config["RS_DATABUS_PUBLISH_TOPIC"]
    port = runtime().settings.TEST_RS_DATABUS_PORT
    serve(catalogue, 20)
    link = CuttableLink()
    change_settings(RS_DATABUS_PORT=link.port)
    send, sent = channel.send, []

    def cut_after_five(*args, **kwargs):
        if len(sent) == 5:
            link.cut()
        send(*args, **kwargs)
        sent.append(args)

    before = retried()
    with consumer(topic) as received:
        monkeypatch.setattr(channel, "send", cut_after_five)
        assert publish_pending(runtime().settings) == 5
        monkeypatch.setattr(channel, "send", send)
        assert retried() == before + 15
        assert len(stored(published=True)) == 5
        assert len(stored(published=False, publish_claim=None)) == 15

        assert publish_pending(runtime().settings) == 0  # still unreachable
        assert retried() == before + 30
        served = serve(catalogue, 5)  # answered: no broker on the request path
        assert len(stored(published=False)) == 20

        change_settings(RS_DATABUS_PORT=port)  # the broker is back
        assert publish_pending(runtime().settings) == 20
        wait_until(lambda: len(received.bodies) == 25, 10, "every message")
        time.sleep(0.2)
    ids = [headers["recommendation-id"] for headers in received.headers]
    assert len(ids) == len(set(ids)) == 25
    assert served[-1]["response"] in [json.loads(b)["response"] for b in received.bodies]


def test_nothing_is_sent_while_the_databus_is_disabled(catalogue):
    serve(catalogue, 2)
    change_settings(RS_DATABUS_ENABLED=False)
    assert publish_recommendations.apply().get() == 0
    assert len(stored(published=False)) == 2
    assert set(beat_schedule({"RS_DATABUS_ENABLED": False})) == {"experiment-results"}


@pytest.mark.redis
def test_a_real_worker_runs_the_scheduled_publication(catalogue):
    """The task beat enqueues, run by a real worker on Redis (its own queue)."""
    from recommender.celery_app import celery

    topic = catalogue.config["RS_DATABUS_PUBLISH_TOPIC"]
    schedule = beat_schedule(catalogue.config)["publish-recommendations"]
    assert schedule["task"] == PUBLISH_TASK == publish_recommendations.name
    assert schedule["schedule"] == catalogue.config["RS_DATABUS_PUBLISH_INTERVAL"]
    serve(catalogue, 2)
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
            celery.send_task(schedule["task"], **schedule["options"])
            wait_until(lambda: len(received.bodies) == 2, 20, "the worker's publications")
    finally:
        celery.conf.task_default_queue = previous_queue
        celery.conf.task_always_eager = True
        broker = redis.Redis.from_url(celery.conf.broker_url)
        for key in broker.scan_iter(f"*{queue}*"):
            broker.delete(key)
    assert len(stored(published=True)) == 2
