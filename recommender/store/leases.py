"""Named locks with an expiry, in MongoDB (one update trains at a time, one migration runner).

Acquiring is one atomic upsert: it succeeds when the lease is free, expired, or already ours
(which renews it). A holder that dies loses the lease when it expires; `kept` renews one in the
background for as long as its holder runs.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pymongo.errors import DuplicateKeyError, PyMongoError

from recommender.models.ops import Lease, utcnow
from recommender.store import get_db

logger = logging.getLogger(__name__)


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
) -> Iterator[KeptLease]:
    """Hold lease `name` for the block, renewed while it runs (`kept`) and released after it
    whatever happens; while another holder has it, raise `busy(that holder)` instead (the
    caller's own error, with its words)."""
    if not acquire(name, holder, ttl_s):
        raise busy(holder_of(name))
    with kept(name, holder, ttl_s) as lease:
        yield lease


class LeaseLostError(RuntimeError):
    """A kept lease could not be renewed: another holder has it (ours had expired)."""


class KeptLease:
    """A held lease renewed by a daemon thread every quarter of its TTL (see `kept`)."""

    def __init__(self, name: str, holder: str, ttl_s: float):
        self.name, self.holder, self.ttl_s = name, holder, ttl_s
        self.lost_to: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{name}", daemon=True)

    def check(self) -> None:
        """Raise LeaseLostError once a renewal found the lease taken."""
        if self.lost_to is not None:
            raise LeaseLostError(f"the {self.name} lease was lost to {self.lost_to}")

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 4):
            try:
                renewed = acquire(self.name, self.holder, self.ttl_s)
            except PyMongoError as error:  # the store is away: the lease may still be ours
                logger.warning("Renewing the %s lease failed: %s", self.name, error)
                continue
            if not renewed:
                self.lost_to = holder_of(self.name) or "another holder"
                logger.error("The %s lease was lost to %s", self.name, self.lost_to)
                return


@contextmanager
def kept(name: str, holder: str, ttl_s: float) -> Iterator[KeptLease]:
    """Keep lease `name` (already acquired by `holder`) renewed while the block runs, and
    release it after, whatever happens. A holder that dies stops renewing: the lease expires
    `ttl_s` after the last renewal."""
    lease = KeptLease(name, holder, ttl_s)
    lease._thread.start()
    try:
        yield lease
    finally:
        lease._stop.set()
        lease._thread.join()
        release(name, holder)
