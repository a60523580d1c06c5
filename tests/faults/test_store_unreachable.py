"""The store unreachable after start-up: a real pymongo client pointed at a port where nothing
listens (short server selection timeout), after the app served from the test store.

Serving answers from what the process holds in memory (catalogue, models); every endpoint that
needs the database answers 503 with a clear message, never a 500 with a traceback; a process
that has nothing in memory yet answers 503 too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import mongoengine

from recommender.api.errors import STORE_UNREACHABLE
from recommender.services import recommendations
from recommender.services.bookkeeping import DeferredWriter, writer
from recommender.store import connect_db
from tests.api.helpers import body
from tests.faults.helpers import free_port, serving
from tests.marketplace_dump import marketplace_dump
from tests.user_actions.payloads import user_action


def point_documents_at_the_current_connection() -> None:
    """Each document's cached collection handle, as a process connected to that server holds
    it (made without a round trip)."""
    db = mongoengine.get_db()
    documents, seen = list(mongoengine.Document.__subclasses__()), set()
    while documents:  # every document class, abstract bases' subclasses included
        document = documents.pop()
        if document not in seen:
            seen.add(document)
            documents += document.__subclasses__()
            if not document._meta.get("abstract"):
                document._collection = db[document._get_collection_name()]


@contextmanager
def unreachable_store(app) -> Iterator[None]:
    mongoengine.disconnect_all()
    mongoengine.connect(
        db="unreachable",
        host=f"mongodb://127.0.0.1:{free_port()}/unreachable",
        serverSelectionTimeoutMS=200,
        connectTimeoutMS=200,
    )
    point_documents_at_the_current_connection()
    try:
        yield
    finally:
        connect_db(app.config)  # a store again (an empty one: the test ends)
        point_documents_at_the_current_connection()


def test_serving_goes_on_from_memory_and_the_rest_is_a_clear_503(app, client, monkeypatch):
    answer = serving(client)
    writer.flush()
    own_writer = DeferredWriter(interval=3600)  # its pending document dies with the test
    monkeypatch.setattr(recommendations, "writer", own_writer)
    with unreachable_store(app):
        again = client.post("/recommendations", json=body(engine_version="Popularity"))
        assert again.status_code == 200
        assert again.get_json()["recommendations"] == answer["recommendations"]
        assert own_writer.flush() == 1  # tried, not written: kept for when the store is back
        assert own_writer.pending() == 1

        for response in (
            client.post("/user_actions", json=user_action()),
            client.post("/update", json=marketplace_dump()),
            client.get("/update/some-task"),
        ):
            assert response.status_code == 503
            assert response.get_json() == {"message": STORE_UNREACHABLE}
        health = client.get("/health")
        assert health.status_code == 503
        assert health.get_json()["database"]["status"] == "DOWN"


def test_a_process_with_nothing_in_memory_answers_503(app, client):
    from recommender.services.runtime import attach

    serving(client)
    with unreachable_store(app):
        attach(app, app.extensions["recommender"].settings)  # a fresh process's empty caches
        response = client.post("/recommendations", json=body())
        assert response.status_code == 503
        assert response.get_json() == {"message": STORE_UNREACHABLE}
