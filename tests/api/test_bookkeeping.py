"""The deferred writer: batches off the request path, survives bad documents, loses nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import mongomock
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from recommender.models.activity import Recommendation
from recommender.services.bookkeeping import DeferredWriter
from recommender.store import get_db
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


def test_counters_are_summed_in_memory_and_written_as_one_upsert_each(app):
    writer = DeferredWriter(interval=60)
    collection = get_db().counters
    collection.insert_one({"name": "a", "count": 10})
    upserts = []
    update_one = collection.update_one

    def counted(*args, **kwargs):
        upserts.append(args[0])
        return update_one(*args, **kwargs)

    collection.update_one = counted
    for _ in range(5):
        writer.increment(collection, {"name": "a"})
    writer.increment(collection, {"name": "b"}, 3)
    writer.increment(collection, {"name": "b"}, 4)
    assert writer.pending() == 2
    assert writer.flush() == 2
    assert sorted(upserts, key=str) == [{"name": "a"}, {"name": "b"}]
    assert {doc["name"]: doc["count"] for doc in collection.find()} == {"a": 15, "b": 7}
    assert writer.pending() == 0


def test_counters_wait_for_their_interval_while_documents_do_not(app):
    writer = DeferredWriter(interval=0.01, count_interval=3600)
    collection = get_db().counters
    writer.increment(collection, {"name": "a"})
    writer.insert(collection, {"name": "document"})
    deadline = time.monotonic() + 5
    while collection.count_documents({"name": "document"}) == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # several more background flushes
    assert collection.count_documents({"name": "a"}) == 0
    assert writer.pending() == 1
    writer.flush()
    assert collection.find_one({"name": "a"})["count"] == 1


def test_counters_of_two_connections_to_one_database_stay_apart():
    old, new = (mongomock.MongoClient().test.counters for _ in range(2))
    assert old == new  # equal by database and name, yet different stores
    writer = DeferredWriter(interval=60)
    writer.increment(old, {"name": "a"})
    writer.increment(new, {"name": "a"}, 5)
    writer.flush()
    assert old.find_one()["count"] == 1
    assert new.find_one()["count"] == 5


def test_a_counter_another_process_created_first_is_incremented():
    class Raced:
        name = "raced"
        calls = 0

        def update_one(self, key, update, upsert):
            self.calls += 1
            if self.calls == 1:  # both upserted; the other insert won
                raise DuplicateKeyError("E11000")
            self.update = update

    collection = Raced()
    writer = DeferredWriter(interval=60)
    writer.increment(collection, {"name": "a"}, 4)
    writer.flush()
    assert (collection.calls, collection.update) == (2, {"$inc": {"count": 4}})


def test_counters_are_kept_while_the_database_is_unreachable():
    class Flaky:
        name = "flaky"

        def __init__(self):
            self.down = True
            self.written: list[tuple] = []

        def update_one(self, key, update, upsert):
            if self.down:
                raise ConnectionFailure("down")
            self.written.append((key, update, upsert))

    writer = DeferredWriter(interval=60)
    collection = Flaky()
    writer.increment(collection, {"name": "a"}, 2)
    writer.flush()
    assert writer.pending() == 1
    collection.down = False
    writer.increment(collection, {"name": "a"}, 1)
    writer.flush()
    assert collection.written == [({"name": "a"}, {"$inc": {"count": 3}}, True)]


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
