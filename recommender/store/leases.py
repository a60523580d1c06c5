"""Named locks with an expiry, in MongoDB (one update trains at a time, one migration runner).

Acquiring is one atomic upsert: it succeeds when the lease is free, expired, or already ours.
A holder that dies loses the lease when it expires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pymongo.errors import DuplicateKeyError

from recommender.models.ops import Lease, utcnow
from recommender.store import get_db


def _collection():
    return get_db()[Lease._get_collection_name()]


def acquire(name: str, holder: str, ttl_s: float) -> bool:
    now = utcnow()
    try:
        _collection().update_one(
            {"_id": name, "$or": [{"expires_at": {"$lt": now}}, {"holder": holder}]},
            {"$set": {"holder": holder, "expires_at": now + dt.timedelta(seconds=ttl_s)}},
            upsert=True,
        )
    except DuplicateKeyError:  # held by someone else: the upsert tried to insert a second _id
        return False
    return True


def release(name: str, holder: str) -> None:
    _collection().delete_one({"_id": name, "holder": holder})


def holder_of(name: str) -> str | None:
    document = _collection().find_one({"_id": name, "expires_at": {"$gte": utcnow()}})
    return document["holder"] if document else None


@contextmanager
def held(
    name: str, holder: str, ttl_s: float, busy: Callable[[str | None], BaseException]
) -> Iterator[None]:
    """Hold lease `name` for the block, released after it whatever happens; while another
    holder has it, raise `busy(that holder)` instead (the caller's own error, with its words)."""
    if not acquire(name, holder, ttl_s):
        raise busy(holder_of(name))
    try:
        yield
    finally:
        release(name, holder)
