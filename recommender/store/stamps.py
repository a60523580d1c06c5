"""Version stamps: counters in MongoDB that tell serving processes when to rebuild their caches.

Writers bump a stamp after a change is complete (a catalogue swap, a model promotion). Readers
look at the stamps at most once per `MODEL_RELOAD_INTERVAL` seconds, so the hot path makes no
database round trip for the check. A bump also makes every stamp cache of this process read
again on its next look, so a stage trained right after another in the same worker sees the
promotion at once.
"""

from __future__ import annotations

import threading
import time
import weakref

from pymongo import ReturnDocument

from recommender.models.ops import VersionStamp, utcnow
from recommender.store import get_db

CATALOGUE = "catalogue"


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
        self._lock = threading.Lock()
        if follow_local_writes:
            _caches.add(self)

    def get(self, name: str) -> int:
        now = time.monotonic()
        if now - self._read_at >= self.interval:
            with self._lock:
                if now - self._read_at >= self.interval:
                    self._values = read_all()
                    self._read_at = now
        return self._values.get(name, 0)

    def invalidate(self) -> None:
        self._read_at = float("-inf")
