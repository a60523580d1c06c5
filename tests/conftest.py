"""Shared fixtures: an app on a fresh in-process mongomock store, and its test client."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["FLASK_ENV"] = "testing"


@pytest.fixture
def app():
    from recommender import create_app
    from recommender.engines.base.model_cache import reset_model_cache

    reset_model_cache()
    # Interval 0: a model promoted in a test is seen by the next request at once.
    app = create_app(
        "testing", MONGODB_HOST="mongomock", RS_API_TOKEN=None, MODEL_RELOAD_INTERVAL=0
    )
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()
