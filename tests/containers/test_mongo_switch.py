"""The tests' store switch (tests/conftest.py): mongomock by default; with MONGODB_HOST naming a
real server (docker-compose.testing.yml), one fresh database per test, dropped after it.

No MongoDB server runs here, so the real-server path is driven with an in-process client standing
in for the server's admin connection.
"""

from __future__ import annotations

from pathlib import Path

import mongomock
import pytest
from pymongo import MongoClient

from recommender.models import Service
from recommender.settings import is_mongomock

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"


@pytest.fixture
def conftest(request):
    """The loaded tests/conftest.py module (the one pytest uses, not a second copy)."""
    for plugin in request.config.pluginmanager.get_plugins():
        if getattr(plugin, "__file__", None) == str(CONFTEST):
            return plugin
    raise LookupError("tests/conftest.py is not loaded")


def test_app_fixture_gives_an_empty_store_with_tasks_run_in_process(app, conftest):
    assert Service.objects.count() == 0
    assert app.config["CELERY_TASK_ALWAYS_EAGER"] is True
    if is_mongomock(conftest.TEST_MONGODB_HOST):
        assert app.config["MONGODB_HOST"] == "mongomock"
    else:
        assert app.config["DB_NAME"].startswith("test_")


def test_a_real_server_gives_each_test_its_own_database_dropped_after(conftest, monkeypatch):
    server = mongomock.MongoClient()
    monkeypatch.setattr(conftest, "admin_client", lambda _host: server)
    with (
        conftest.fresh_store("mongo:27017") as first,
        conftest.fresh_store("mongo:27017") as second,
    ):
        assert first["MONGODB_HOST"] == second["MONGODB_HOST"] == "mongo:27017"
        assert first["DB_NAME"] != second["DB_NAME"]
        assert first["DB_NAME"].startswith("test_")
        server[first["DB_NAME"]]["service"].insert_one({"_id": 1})
        server[second["DB_NAME"]]["service"].insert_one({"_id": 1})
        assert {first["DB_NAME"], second["DB_NAME"]} <= set(server.list_database_names())
    assert first["DB_NAME"] not in server.list_database_names()
    assert second["DB_NAME"] not in server.list_database_names()


def test_a_real_server_settings_point_the_app_at_that_database(conftest, monkeypatch):
    from recommender.settings import load_config

    monkeypatch.setattr(conftest, "admin_client", lambda _host: mongomock.MongoClient())
    with conftest.fresh_store("mongo:27017") as overrides:
        _, config = load_config("testing", **overrides)
    assert config["MONGODB_URI"] == f"mongodb://mongo:27017/{overrides['DB_NAME']}"


def test_mongomock_needs_no_server(conftest, monkeypatch):
    def no_server(_host):
        raise AssertionError("mongomock must not contact a server")

    monkeypatch.setattr(conftest, "admin_client", no_server)
    with conftest.fresh_store("mongomock") as overrides:
        assert overrides == {"MONGODB_HOST": "mongomock"}


def test_a_server_that_cannot_hold_test_databases_is_refused(conftest, monkeypatch):
    assert "names a database" in conftest.check_real_store("mongodb://mongo:27017/recommender")
    monkeypatch.setattr(
        conftest,
        "admin_client",
        lambda _host: MongoClient("mongodb://127.0.0.1:9", serverSelectionTimeoutMS=200),
    )
    assert "does not answer" in conftest.check_real_store("127.0.0.1:9")
