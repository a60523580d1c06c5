"""The subscriber against the real broker: stored once, bad messages kept, drops survived."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace

import pytest
from prometheus_client import REGISTRY
from pymongo.errors import AutoReconnect

from recommender.databus.subscriber import Subscriber
from recommender.models.activity import UserAction
from recommender.models.ops import RejectedMessage
from recommender.services import traffic
from recommender.services.bookkeeping import writer
from tests.databus.bus import (
    connection_dropper,
    producer,
    running_subscriber,
    subscriber_options,
    unique_topic,
    wait_until,
)
from tests.network import free_port
from tests.user_actions.payloads import user_action

pytestmark = pytest.mark.broker


def count() -> int:
    return UserAction._get_collection().count_documents({})


def stored_by_unique_id(unique_id: str) -> bool:
    return UserAction._get_collection().count_documents({"unique_id": unique_id}) > 0


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name, {"source": "databus"}) or 0.0


def test_an_action_makes_the_round_trip(bus_app):
    topic = bus_app.config["RS_DATABUS_SUBSCRIPTION_TOPIC"]
    body = user_action(
        client_id="search_service",
        source__root={"type": "search", "resource_type": "dataset", "resource_id": "ds-1"},
    )
    with running_subscriber(bus_app, topic), producer() as sender:
        sender.send(topic, json.dumps(body))
        wait_until(lambda: count() == 1, 10, "the action to be stored")
    [action] = UserAction._get_collection().find()
    assert action["channel"] == "databus"
    assert action["unique_id"] == body["unique_id"]
    assert action["client_id"] == "search_service"
    assert action["source"]["root"]["resource_id"] == "ds-1"
    assert action["target"]["visit_id"] == body["target"]["visit_id"]


def test_an_action_sent_over_http_and_the_databus_is_stored_once(bus_app):
    topic = bus_app.config["RS_DATABUS_SUBSCRIPTION_TOPIC"]
    body, marker = user_action(), user_action()
    assert bus_app.test_client().post("/user_actions", json=body).status_code == 204
    duplicates = metric("recommender_user_actions_duplicate_total")
    with running_subscriber(bus_app, topic), producer() as sender:
        # The same instant written another way is still the same action.
        sender.send(topic, json.dumps({**body, "timestamp": "2024-02-21T14:19:43.512Z"}))
        sender.send(topic, json.dumps(marker))
        wait_until(lambda: stored_by_unique_id(marker["unique_id"]), 10, "the marker")
    assert count() == 2
    assert metric("recommender_user_actions_duplicate_total") == duplicates + 1


def test_malformed_and_double_encoded_bodies(bus_app):
    topic = bus_app.config["RS_DATABUS_SUBSCRIPTION_TOPIC"]
    double, marker = user_action(), user_action()
    malformed: list[str | bytes] = [
        "not json",
        "[1, 2]",
        json.dumps("just text"),
        json.dumps(json.dumps([1])),
        json.dumps(user_action(unique_id="nope")),
        json.dumps(user_action(action={"type": "button"})),
        b'\xff\xfe{"a": 1}',
    ]
    rejected_before = metric("recommender_user_actions_rejected_total")
    with running_subscriber(bus_app, topic), producer() as sender:
        sender.send(topic, json.dumps(json.dumps(double)))  # double-encoded: stored
        for body in malformed:
            sender.send(topic, body)
        sender.send(topic, json.dumps(marker))  # bad messages do not block the queue
        wait_until(lambda: stored_by_unique_id(marker["unique_id"]), 10, "the marker")
    assert {a["unique_id"] for a in UserAction._get_collection().find()} == {
        double["unique_id"],
        marker["unique_id"],
    }
    rejects = list(RejectedMessage._get_collection().find())
    assert len(rejects) == len(malformed)
    assert all(r["reason"] and r["destination"] == topic for r in rejects)
    reasons = " | ".join(r["reason"] for r in rejects)
    assert "unique_id" in reasons and "action.text" in reasons and "invalid JSON" in reasons
    assert {r["body"] for r in rejects} >= {"not json", "[1, 2]"}
    assert metric("recommender_user_actions_rejected_total") == rejected_before + len(malformed)
    writer.flush()
    assert {row.labels: row.day for row in traffic.user_actions()} == {
        ("databus", "rejected"): len(malformed),
        ("databus", "stored"): 2,
    }


def test_what_is_published_while_the_subscriber_is_away_is_kept(bus_app):
    topic = bus_app.config["RS_DATABUS_SUBSCRIPTION_TOPIC"]
    subscription = f"test-sub-{uuid.uuid4().hex}"
    with running_subscriber(bus_app, topic, subscription, keep=True) as (_, thread):
        pass
    assert not thread.is_alive()  # stopped cleanly
    bodies = [user_action() for _ in range(20)]
    with producer() as sender:
        for body in bodies:
            sender.send(topic, json.dumps(body))
    time.sleep(0.2)
    assert count() == 0
    with running_subscriber(bus_app, topic, subscription):
        wait_until(lambda: count() == len(bodies), 10, "the actions published while away")


def test_a_non_durable_subscription_also_stores(bus_app):
    topic = bus_app.config["RS_DATABUS_SUBSCRIPTION_TOPIC"]
    with running_subscriber(bus_app, topic, durable=False), producer() as sender:
        sender.send(topic, json.dumps(user_action()))
        wait_until(lambda: count() == 1, 10, "the action to be stored")


def test_1000_messages_with_the_connection_dropped_midway(bus_app):
    """The broker drops the subscriber's connection while publishing goes on: every valid
    message is stored exactly once (unacknowledged ones are redelivered and deduplicated)."""
    topic = bus_app.config["RS_DATABUS_SUBSCRIPTION_TOPIC"]
    valid = [user_action() for _ in range(1000)]
    bad = [f"broken message {i}" for i in range(20)]
    bodies: list[str] = [json.dumps(body) for body in valid]
    for i, body in enumerate(bad):
        bodies.insert(50 * i + 25, body)
    dropped = threading.Event()
    sent: list[int] = []

    def publish() -> None:
        with producer() as sender:
            for i, body in enumerate(bodies):
                if i == len(bodies) - 200:
                    dropped.wait(30)  # the last 200 go out while the subscriber reconnects
                sender.send(topic, body)
                sent.append(i)
                if i % 20 == 0:
                    time.sleep(0.04)

    with running_subscriber(bus_app, topic, batch_size=50) as (subscriber, _):
        drop = connection_dropper(subscriber)
        publishing = threading.Thread(target=publish)
        publishing.start()
        wait_until(lambda: count() >= 150, 20, "the first actions")
        drop()
        sent_at_drop = len(sent)
        dropped.set()
        wait_until(lambda: subscriber.sessions >= 2, 20, "the subscriber to reconnect")
        publishing.join(30)
        wait_until(lambda: count() >= len(valid), 30, "every action")
        time.sleep(0.3)  # nothing more arrives
    assert 0 < sent_at_drop < len(bodies)
    actions = list(UserAction._get_collection().find({}, {"target.visit_id": 1}))
    assert len(actions) == len(valid)
    assert {a["target"]["visit_id"] for a in actions} == {b["target"]["visit_id"] for b in valid}
    assert {r["body"] for r in RejectedMessage._get_collection().find()} == set(bad)


def test_an_unreachable_broker_is_retried_with_backoff_until_stopped(bus_app, caplog):
    options = subscriber_options(unique_topic("nobody"), "test-sub-unreachable")
    options = replace(options, bus=replace(options.bus, port=free_port()))
    stop = threading.Event()
    subscriber = Subscriber(options, stop)
    caplog.set_level(logging.WARNING, "recommender.databus.subscriber")
    thread = threading.Thread(target=subscriber.run)
    thread.start()
    wait_until(lambda: "attempt 3 failed" in caplog.text, 10, "three attempts")
    stop.set()
    thread.join(5)
    assert not thread.is_alive()
    assert subscriber.sessions == 0
    assert "attempt 1 failed" in caplog.text and "retrying in" in caplog.text


def test_a_database_outage_leaves_messages_on_the_broker_until_stored(bus_app, monkeypatch):
    from recommender.databus import subscriber as module

    topic = bus_app.config["RS_DATABUS_SUBSCRIPTION_TOPIC"]
    store, failures = module.store_actions, []

    def unreachable_twice(actions, source):
        if len(failures) < 2:
            failures.append(len(actions))
            raise AutoReconnect("connection refused")
        return store(actions, source)

    monkeypatch.setattr(module, "store_actions", unreachable_twice)
    bodies = [user_action() for _ in range(5)]
    with running_subscriber(bus_app, topic) as (subscriber, _), producer() as sender:
        for body in bodies:
            sender.send(topic, json.dumps(body))
        wait_until(lambda: count() == len(bodies), 20, "the actions after the outage")
        time.sleep(0.2)
    assert len(failures) == 2 and subscriber.sessions == 3  # not acked: redelivered twice
    assert count() == len(bodies)


def test_the_subscriber_role_does_not_load_torch():
    """Ingestion runs in its own process: it must start fast and small, without the engines'
    torch (importing it took ~0.25 s, paid on the first stored action)."""
    code = "import sys, recommender.databus.subscriber; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
