"""Databus tests run against the real STOMP broker (RabbitMQ at 127.0.0.1:61613, guest/guest)."""

from __future__ import annotations

import pytest

from recommender.broker import check
from tests.databus.bus import BUS_OVERRIDES, SETTINGS, unique_topic


@pytest.fixture(scope="session")
def broker() -> None:
    error = check(SETTINGS)
    if error:
        pytest.fail(
            f"No STOMP broker at {SETTINGS.address} ({error}): run scripts/services.sh "
            "(RabbitMQ with `rabbitmq-plugins enable rabbitmq_stomp`)"
        )


@pytest.fixture
def bus_app(broker):
    """An app on a fresh mongomock store, talking to the test broker, publishing to its own
    topic."""
    from recommender import create_app

    app = create_app(
        "testing",
        MONGODB_HOST="mongomock",
        RS_API_TOKEN=None,
        RS_DATABUS_PUBLISH_TOPIC=unique_topic("recommendations"),
        RS_DATABUS_SUBSCRIPTION_TOPIC=unique_topic("user-actions"),
        **BUS_OVERRIDES,
    )
    with app.app_context():
        yield app
