"""Version stamps: counters in MongoDB that tell serving processes when to rebuild their caches.

Writers bump a stamp after a change is complete (a catalogue swap, a model promotion). Readers
look at the stamps at most once per `MODEL_RELOAD_INTERVAL` seconds, so the hot path makes no
database round trip for the check.
"""

from __future__ import annotations

import threading
import time

from pymongo import ReturnDocument

from recommender.extensions import get_db
from recommender.models.ops import VersionStamp, utcnow

CATALOGUE = "catalogue"


def bump(name: str) -> int:
    """Increment stamp `name` atomically and return its new value."""
    collection = get_db()[VersionStamp._get_collection_name()]
    document = collection.find_one_and_update(
        {"_id": name},
        {"$inc": {"version": 1}, "$set": {"updated_at": utcnow()}},
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    return document["version"]


def read_all() -> dict[str, int]:
    collection = get_db()[VersionStamp._get_collection_name()]
    return {doc["_id"]: doc["version"] for doc in collection.find({}, {"version": 1})}


class StampCache:
    """The stamps as last read, re-read from the database at most every `interval` seconds."""

    def __init__(self, interval: float):
        self.interval = interval
        self._values: dict[str, int] = {}
        self._read_at = float("-inf")
        self._lock = threading.Lock()

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
