"""Shared fixtures: an app on a fresh in-process mongomock store, and its test client."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ["FLASK_ENV"] = "testing"


@pytest.fixture
def app():
    from recommender import create_app

    app = create_app("testing", MONGODB_HOST="mongomock", RS_API_TOKEN=None)
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()
