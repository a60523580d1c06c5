"""What the fault tests share: a free port (nothing listens there) and the served catalogue."""

from __future__ import annotations

import socket

from recommender.engines.popularity.pipeline import train as train_popularity
from tests.api.helpers import body, load
from tests.app_helpers import env


def free_port() -> int:
    """A port nothing listens on: a service "down" without stopping the machine's own."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serving(client) -> dict:
    """Load the test catalogue, train Popularity and serve one request (caches warm); returns
    the answer."""
    load()
    train_popularity(env())
    response = client.post("/recommendations", json=body(engine_version="Popularity"))
    assert response.status_code == 200
    return response.get_json()
