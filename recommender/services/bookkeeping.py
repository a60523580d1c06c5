"""Deferred bookkeeping: writes taken off the request path, done in batches.

A request only appends to an in-memory list (a microsecond). A background thread flushes the
list every `interval` seconds, or as soon as `batch` documents wait, with one `insert_many` per
collection. What a crashed process loses is what this list held: at most `batch` documents or
`interval` seconds of traffic (docs/architecture.md). Id arrays (numpy) in a document become
stored lists when it is written (`store.id_list`), so the request never builds them.
Nothing is lost on shutdown: `atexit` flushes, and so does a fork (gunicorn `--preload`) before
the child starts, so parent and child never share pending items. Tests call `flush()`.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading

import numpy as np
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, ConnectionFailure

from recommender.store import id_list

logger = logging.getLogger(__name__)
# Past this many pending documents (the database has been unreachable for a while) the oldest
# are dropped, loudly, rather than growing without bound.
MAX_PENDING = 100_000


class DeferredWriter:
    def __init__(self, interval: float = 0.1, batch: int = 500):
        self.interval = interval
        self.batch = batch
        self._init_state()

    def _init_state(self) -> None:
        self._documents: list[tuple[Collection, dict]] = []
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

    def pending(self) -> int:
        with self._lock:
            return len(self._documents)

    def flush(self) -> int:
        """Write everything pending now; returns how many documents were handled."""
        with self._flush_lock:
            with self._lock:
                documents, self._documents = self._documents, []
            self._write(documents)
            return len(documents)

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
            try:
                self.flush()
            except Exception:  # the loop must survive anything a flush meets
                logger.exception("Bookkeeping flush failed")

    def _after_fork_in_child(self) -> None:
        # The parent flushed just before the fork; the child starts empty, with its own thread.
        self._init_state()


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
