"""Shared fixtures: an app on a fresh empty store, and its test client.

The store is an in-process mongomock one, unless MONGODB_HOST (in the environment pytest starts
with) names a real MongoDB server, as docker-compose.testing.yml does: then every test gets a
fresh database of its own on that server (`test_<uuid>`), dropped after the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache

import pytest
from hypothesis import HealthCheck, settings
from pymongo import MongoClient, uri_parser
from pymongo.errors import PyMongoError

from recommender.settings import is_mongomock, mongodb_uri

os.environ.setdefault("OMP_NUM_THREADS", "1")
# The suite runs on shared, sometimes loaded machines (CI, a GPU host): property tests check
# results, never timing.
settings.register_profile("shared", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("shared")
os.environ["FLASK_ENV"] = "testing"

# Read once, before any `.env` is loaded into the environment, so one run uses one kind of store.
TEST_MONGODB_HOST = os.environ.get("MONGODB_HOST") or "mongomock"


@cache
def admin_client(host: str) -> MongoClient:
    """One client per run for the real server's housekeeping (ping, dropping test databases)."""
    return MongoClient(mongodb_uri(host, "admin"), serverSelectionTimeoutMS=5000)


def check_real_store(host: str) -> str | None:
    """Why `host` cannot hold the tests' databases, or None when it can."""
    if host.startswith(("mongodb://", "mongodb+srv://")) and uri_parser.parse_uri(host)["database"]:
        return f"MONGODB_HOST={host} names a database; give the server only"
    try:
        admin_client(host).admin.command("ping")
    except PyMongoError as error:
        return f"MONGODB_HOST={host} does not answer ({error}); unset it to test on mongomock"
    return None


@contextmanager
def fresh_store(host: str) -> Iterator[dict]:
    """create_app() settings for one test's own empty store; a real database is dropped after."""
    if is_mongomock(host):
        yield {"MONGODB_HOST": "mongomock"}
        return
    name = f"test_{uuid.uuid4().hex}"
    try:
        yield {"MONGODB_HOST": host, "DB_NAME": name}
    finally:
        admin_client(host).drop_database(name)


def pytest_sessionstart(session: pytest.Session) -> None:
    if not is_mongomock(TEST_MONGODB_HOST) and (problem := check_real_store(TEST_MONGODB_HOST)):
        pytest.exit(problem, returncode=3)


def pytest_report_header() -> str:
    if is_mongomock(TEST_MONGODB_HOST):
        return "store: mongomock (in-process)"
    return f"store: MongoDB at {TEST_MONGODB_HOST}, one fresh database per test"


@pytest.fixture
def store_overrides() -> Iterator[dict]:
    """Settings for create_app() that give this test its own empty store (see module doc)."""
    with fresh_store(TEST_MONGODB_HOST) as overrides:
        yield overrides


def build_app(store_overrides: dict, **changes):
    """The tests' app on its own store; `changes` override the defaults below."""
    from recommender import create_app

    # Interval 0: a model promoted in a test is seen by the next request at once.
    # Eager tasks: they run in the test's process, on a real server as on mongomock.
    # Exploration off: tests of an engine's answer see its top K (tests/api/test_policy.py
    # turns it on).
    settings = {
        "RS_API_TOKEN": None,
        "MODEL_RELOAD_INTERVAL": 0,
        "CELERY_TASK_ALWAYS_EAGER": True,
        "EXPLORATION_EPSILON_V1": 0,
        "EXPLORATION_EPSILON_V2": 0,
    }
    return create_app("testing", **store_overrides, **(settings | changes))


@pytest.fixture
def app(store_overrides):
    app = build_app(store_overrides)
    with app.app_context():
        yield app


@pytest.fixture
def client(app):
    return app.test_client()
