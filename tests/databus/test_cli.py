"""`flask subscribe`: options and environment variables, clean stop, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import click
import pytest

from recommender.commands.subscribe import environment_options, subscriber_options
from recommender.databus.subscriber import subscription_headers
from tests.databus.bus import BUS_OVERRIDES, delete_durable_subscription, producer, unique_topic
from tests.user_actions.payloads import user_action

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "args",
    [["--port", "http"], ["--port", "0"], ["--topic", " "], ["--ssl", "--bogus"]],
)
def test_bad_options_exit_non_zero(app, args):
    result = app.test_cli_runner().invoke(args=["subscribe", *args])
    assert result.exit_code == 2, result.output


def test_a_durable_subscription_gets_a_stable_id_by_default():
    common = {
        "host": "h",
        "port": 1,
        "username": "u",
        "password": "p",
        "topic": "/topic/t",
        "ssl": True,
    }
    durable = subscriber_options(subscription_id=None, durable=True, **common)
    again = subscriber_options(subscription_id=None, durable=True, **common)
    passing = subscriber_options(subscription_id=None, durable=False, **common)
    assert durable.subscription_id == again.subscription_id == "recommender"
    assert passing.subscription_id.startswith("recommender-")
    assert durable.bus.ssl and durable.bus.password == "p"


def test_the_demo_gets_the_options_subscribe_reads_from_the_environment(monkeypatch):
    monkeypatch.setenv("RS_DATABUS_PORT", "61614")
    monkeypatch.setenv("RS_DATABUS_SSL", "0")
    monkeypatch.setenv("RS_DATABUS_SUBSCRIPTION_TOPIC", "/topic/elsewhere")
    monkeypatch.delenv("RS_DATABUS_SUBSCRIPTION_ID", raising=False)
    options = environment_options()
    assert (options.bus.port, options.bus.ssl, options.topic) == (61614, False, "/topic/elsewhere")
    assert options.durable and options.subscription_id == "recommender"
    monkeypatch.setenv("RS_DATABUS_PORT", "many")
    with pytest.raises(click.BadParameter):
        environment_options()


@pytest.mark.broker
def test_subscribe_reads_the_environment_and_stops_cleanly_on_sigterm(broker):
    topic, subscription = unique_topic("cli"), f"test-cli-{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "FLASK_ENV": "testing",
        "MONGODB_HOST": "mongomock",
        "RS_DATABUS_HOST": BUS_OVERRIDES["RS_DATABUS_HOST"],
        "RS_DATABUS_PORT": str(BUS_OVERRIDES["RS_DATABUS_PORT"]),
        "RS_DATABUS_USERNAME": BUS_OVERRIDES["RS_DATABUS_USERNAME"],
        "RS_DATABUS_PASSWORD": BUS_OVERRIDES["RS_DATABUS_PASSWORD"],
        "RS_DATABUS_SSL": "0",
        "RS_DATABUS_SUBSCRIPTION_TOPIC": topic,
        "RS_DATABUS_SUBSCRIPTION_ID": subscription,
    }
    command = [sys.executable, "-m", "flask", "--app", "app", "subscribe"]
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    subscribed = threading.Event()

    def read() -> None:
        for line in process.stderr:
            lines.append(line)
            if "Subscribed to" in line:
                subscribed.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert subscribed.wait(60), "".join(lines)
        with producer() as sender:
            sender.send(topic, json.dumps(user_action()))
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, "".join(lines)
    finally:
        process.kill()
        delete_durable_subscription(topic, subscription)
    reader.join(5)
    output = "".join(lines)
    assert f"as '{subscription}' (durable)" in output
    assert "SIGTERM: stopping" in output and "subscriber stopped" in output


def options_for(durable: bool):
    return subscriber_options(
        host="h",
        port=1,
        username="u",
        password="p",
        topic="/topic/t",
        ssl=False,
        durable=durable,
        subscription_id="stable",
    )


def test_durable_subscriptions_send_each_brokers_headers():
    connect, subscribe = subscription_headers(options_for(durable=True))
    assert connect == {"client-id": "stable"}  # ActiveMQ
    assert subscribe["durable"] == "true" and subscribe["auto-delete"] == "false"  # RabbitMQ
    assert subscribe["activemq.subscriptionName"] == "stable"
    connect, subscribe = subscription_headers(options_for(durable=False))
    assert connect == {} and "durable" not in subscribe
