"""The deferred writer: batches off the request path, survives bad documents, loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

from recommender.models.activity import Recommendation
from recommender.services.bookkeeping import DeferredWriter
from tests.api.helpers import body, load


class FakeCollection:
    name = "fake"

    def __init__(self):
        self.batches: list[int] = []

    def insert_many(self, docs, ordered=False):
        self.batches.append(len(docs))


def test_served_recommendations_reach_the_database_without_a_manual_flush(client):
    load()
    for _ in range(3):
        assert client.post("/recommendations", json=body()).status_code == 200
    deadline = time.monotonic() + 5
    while Recommendation.objects.count() < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Recommendation.objects.count() == 3


def test_documents_are_written_in_batches():
    writer = DeferredWriter(interval=60, batch=1000)
    collection = FakeCollection()
    for i in range(250):
        writer.insert(collection, {"i": i})
    assert writer.pending() == 250
    assert writer.flush() == 250
    assert collection.batches == [250]
    assert writer.pending() == 0


def test_a_full_batch_wakes_the_writer_early():
    writer = DeferredWriter(interval=60, batch=10)
    collection = FakeCollection()
    for i in range(10):
        writer.insert(collection, {"i": i})
    deadline = time.monotonic() + 5
    while not collection.batches and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(collection.batches) == 10


def test_a_document_the_database_refuses_does_not_sink_the_batch(app):
    writer = DeferredWriter(interval=60)
    collection = Recommendation._get_collection()
    writer.insert(collection, {"unique_id": "a", "page_id": "/ok"})
    writer.insert(collection, {"unique_id": "b", "page_id": "\ud800"})  # cannot be encoded
    writer.insert(collection, {"unique_id": "c", "page_id": "/ok"})
    writer.flush()
    assert sorted(doc["unique_id"] for doc in collection.find()) == ["a", "c"]


def test_pending_documents_are_flushed_at_exit():
    script = textwrap.dedent(
        """
        from recommender.services.bookkeeping import writer

        class Collection:
            name = "c"
            def insert_many(self, docs, ordered=False):
                print("inserted", len(docs), flush=True)

        writer.interval = 3600
        collection = Collection()
        for i in range(7):
            writer.insert(collection, {"i": i})
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=os.getcwd(),
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert done.returncode == 0, done.stderr
    assert "inserted 7" in done.stdout


def test_a_fork_flushes_first_and_the_child_starts_empty():
    from recommender.services.bookkeeping import writer

    collection = FakeCollection()
    writer.insert(collection, {"i": 1})
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports what it inherited, then leaves without cleanup
        os.write(write, str(writer.pending()).encode())
        os._exit(0)
    os.close(write)
    inherited = os.read(read, 16).decode()
    os.waitpid(pid, 0)
    assert inherited == "0"
    assert collection.batches == [1]
