"""Deferred bookkeeping: writes taken off the request path, done in batches.

A request only appends to an in-memory list (a microsecond). A background thread flushes the
list every `interval` seconds, or as soon as `batch` documents wait, with one `insert_many` per
collection. What a crashed process loses is what this list held: at most `batch` documents or
`interval` seconds of traffic (docs/architecture.md). Counters (`increment`, e.g. the
dashboard's traffic rollups) are summed in memory and written every `count_interval` seconds: one
upsert per distinct counter, however many requests it counted. Id arrays (numpy) in a document
become stored lists when it is written (`store.id_list`), so the request never builds them.
Nothing is lost on shutdown: `atexit` flushes, and so does a fork (gunicorn `--preload`) before
the child starts, so parent and child never share pending items. Tests call `flush()`.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import Counter
from typing import Any

import numpy as np
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, ConnectionFailure, DuplicateKeyError

from recommender.store import id_list

logger = logging.getLogger(__name__)
# Past this many pending documents (the database has been unreachable for a while) the oldest
# are dropped, loudly, rather than growing without bound.
MAX_PENDING = 100_000


# A counter: the id of its collection (collections of two connections to one database compare
# equal) and its filter's items.
CounterKey = tuple[int, tuple[tuple[str, Any], ...]]


class DeferredWriter:
    def __init__(self, interval: float = 0.1, batch: int = 500, count_interval: float = 2.0):
        self.interval = interval
        self.batch = batch
        self.count_interval = count_interval
        self._init_state()

    def _init_state(self) -> None:
        self._documents: list[tuple[Collection, dict]] = []
        self._counts: Counter[CounterKey] = Counter()
        self._count_targets: dict[int, Collection] = {}
        self._counts_written = time.monotonic()
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wakeup = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def insert(self, collection: Collection, document: dict) -> None:
        """Insert `document` into `collection` soon."""
        with self._lock:
            self._documents.append((collection, document))
            full = len(self._documents) >= self.batch
        self._ensure_thread()
        if full:
            self._wakeup.set()

    def increment(self, collection: Collection, key: dict[str, Any], amount: int = 1) -> None:
        """Add `amount` to the `count` field of the document of `collection` that `key` (a
        filter of equalities) names, soon; the document is created when missing."""
        with self._lock:
            self._counts[id(collection), tuple(key.items())] += amount
            self._count_targets[id(collection)] = collection
        self._ensure_thread()

    def pending(self) -> int:
        with self._lock:
            return len(self._documents) + len(self._counts)

    def flush(self) -> int:
        """Write everything pending now; returns how many items were handled."""
        return self._flush(counts=True)

    def _flush(self, counts: bool) -> int:
        with self._flush_lock:
            with self._lock:
                documents, self._documents = self._documents, []
                increments: Counter[CounterKey] = Counter()
                targets: dict[int, Collection] = {}
                if counts:
                    increments, self._counts = self._counts, Counter()
                    targets, self._count_targets = self._count_targets, {}
                    self._counts_written = time.monotonic()
            self._write(documents)
            self._write_counts(increments, targets)
            return len(documents) + len(increments)

    def _write(self, documents: list[tuple[Collection, dict]]) -> None:
        by_collection: dict[int, tuple[Collection, list[dict]]] = {}
        for collection, document in documents:
            by_collection.setdefault(id(collection), (collection, []))[1].append(document)
        for collection, docs in by_collection.values():
            try:
                _insert(collection, [_storable(doc) for doc in docs])
            except ConnectionFailure as error:
                logger.warning("Bookkeeping write failed (%s); retrying later", error)
                self._requeue(collection, docs)

    def _write_counts(
        self, increments: Counter[CounterKey], targets: dict[int, Collection]
    ) -> None:
        # One upsert per counter (pymongo's bulk UpdateOne is not in the embedded store); a
        # write interval of seconds keeps them few.
        items = list(increments.items())
        for number, ((target, key), amount) in enumerate(items):
            collection = targets[target]
            try:
                _upsert_count(collection, dict(key), amount)
            except ConnectionFailure as error:
                logger.warning("Counter write failed (%s); retrying later", error)
                with self._lock:
                    self._counts.update(dict(items[number:]))
                    self._count_targets.update(targets)
                return
            except Exception:
                logger.exception("Dropped a %s counter the database refused", collection.name)

    def _requeue(self, collection: Collection, docs: list[dict]) -> None:
        with self._lock:
            self._documents[:0] = [(collection, doc) for doc in docs]
            excess = len(self._documents) - MAX_PENDING
            if excess > 0:
                del self._documents[:excess]
                logger.error("Dropped %d bookkeeping documents: database unreachable", excess)

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(
                        target=self._run, name="bookkeeping", daemon=True
                    )
                    self._thread.start()

    def _run(self) -> None:
        while True:
            self._wakeup.wait(self.interval)
            self._wakeup.clear()
            due = time.monotonic() - self._counts_written >= self.count_interval
            try:
                self._flush(counts=due)
            except Exception:  # the loop must survive anything a flush meets
                logger.exception("Bookkeeping flush failed")

    def _after_fork_in_child(self) -> None:
        # The parent flushed just before the fork; the child starts empty, with its own thread.
        self._init_state()


def _upsert_count(collection: Collection, key: dict[str, Any], amount: int) -> None:
    update = {"$inc": {"count": amount}}
    try:
        collection.update_one(key, update, upsert=True)
    except DuplicateKeyError:  # another process created the counter first: it exists now
        collection.update_one(key, update, upsert=True)


def _storable(document: dict) -> dict:
    """`document` with its numpy id arrays as lists of ints (done once: a requeued document
    is already storable)."""
    for key, value in document.items():
        if isinstance(value, np.ndarray):
            document[key] = id_list(value)
    return document


def _insert(collection: Collection, docs: list[dict]) -> None:
    """Insert in bulk; a document the database refuses is logged and dropped, not the batch."""
    try:
        collection.insert_many(docs, ordered=False)
    except BulkWriteError as error:
        logger.error(
            "%d of %d %s documents were refused: %s",
            len(error.details.get("writeErrors", [])),
            len(docs),
            collection.name,
            error.details.get("writeErrors", [])[:1],
        )
    except ConnectionFailure:
        raise
    except Exception:  # e.g. text that cannot be encoded: find the bad document, keep the rest
        for index, doc in enumerate(docs):
            try:
                collection.insert_one(doc)
            except ConnectionFailure:
                del docs[:index]
                raise
            except Exception:
                logger.exception("Dropped a %s document the database refused", collection.name)


writer = DeferredWriter()
atexit.register(writer.flush)
os.register_at_fork(before=writer.flush, after_in_child=writer._after_fork_in_child)
