"""Version stamps: counters in MongoDB that tell serving processes when to rebuild their caches.

Writers bump a stamp after a change is complete (a catalogue swap, a model promotion). Readers
look at the stamps at most once per `MODEL_RELOAD_INTERVAL` seconds, so the hot path makes no
database round trip for the check. A bump also makes every stamp cache of this process read
again on its next look, so a stage trained right after another in the same worker sees the
promotion at once.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref

from pymongo import ReturnDocument
from pymongo.errors import ConnectionFailure

from recommender.models.ops import VersionStamp, utcnow
from recommender.store import get_db

logger = logging.getLogger(__name__)
CATALOGUE = "catalogue"
# While the database is unreachable, a serving process looks again this often (each look waits
# for the driver's server selection timeout): in between it serves what it holds.
RETRY_UNREACHABLE_S = 5.0


# Every StampCache of this process (weakly: a cache dies with its app).
_caches: weakref.WeakSet[StampCache] = weakref.WeakSet()


def bump(name: str) -> int:
    """Increment stamp `name` atomically and return its new value; this process's caches then
    read the stamps again."""
    collection = get_db()[VersionStamp._get_collection_name()]
    document = collection.find_one_and_update(
        {"_id": name},
        {"$inc": {"version": 1}, "$set": {"updated_at": utcnow()}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    for cache in list(_caches):
        cache.invalidate()
    return document["version"]


def read_all() -> dict[str, int]:
    collection = get_db()[VersionStamp._get_collection_name()]
    return {doc["_id"]: doc["version"] for doc in collection.find({}, {"version": 1})}


class StampCache:
    """The stamps as last read, re-read from the database at most every `interval` seconds."""

    def __init__(self, interval: float, follow_local_writes: bool = True):
        """`follow_local_writes`: a bump in this process makes it read again (off: it stands
        for another process, in tests)."""
        self.interval = interval
        self._values: dict[str, int] = {}
        self._read_at = float("-inf")
        self._loaded = False  # read successfully at least once
        self._lock = threading.Lock()
        if follow_local_writes:
            _caches.add(self)

    def get(self, name: str) -> int:
        """The stamp as last read. When the database is unreachable, the values read before are
        kept (serving goes on from what is in memory); with none read yet, ConnectionFailure."""
        now = time.monotonic()
        if now - self._read_at >= self.interval:
            with self._lock:
                if now - self._read_at >= self.interval:
                    self._refresh(now)
        return self._values.get(name, 0)

    def _refresh(self, now: float) -> None:
        try:
            self._values = read_all()
        except ConnectionFailure as error:
            if not self._loaded:
                raise  # nothing in memory to serve from
            logger.warning("Database unreachable (%s); serving what is in memory", error)
            self._read_at = now + max(0.0, RETRY_UNREACHABLE_S - self.interval)
            return
        self._read_at = now
        self._loaded = True

    def invalidate(self) -> None:
        self._read_at = float("-inf")
