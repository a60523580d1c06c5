"""The `GET /health` databus check: a real STOMP CONNECT with the configured credentials."""

from __future__ import annotations

import pytest

from recommender.services.health import databus
from tests.app_helpers import change_settings
from tests.databus.test_subscriber import free_port

pytestmark = pytest.mark.broker


def test_the_databus_is_up_with_the_right_credentials(bus_app):
    assert databus() == {"status": "UP"}
    assert bus_app.test_client().get("/health").get_json()["databus"] == {"status": "UP"}


@pytest.mark.parametrize(
    "changes",
    [
        {"RS_DATABUS_PASSWORD": "wrong"},
        {"RS_DATABUS_SSL": True},  # the test broker speaks plain STOMP: TLS really is tried
        {"RS_DATABUS_PORT": None},
    ],
)
def test_the_databus_is_down_otherwise(bus_app, changes):
    changes = {k: free_port() if v is None else v for k, v in changes.items()}
    change_settings(**changes)
    assert databus() == {"status": "DOWN", "error": "Connection to databus failed"}
