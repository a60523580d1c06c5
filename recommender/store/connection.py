"""Connecting mongoengine (and the raw pymongo database, GridFS) to the configured store."""

from __future__ import annotations

import gridfs
import mongoengine
import numpy as np
from pymongo.database import Database

from recommender.settings import is_mongomock

_embedded = False


def connect_db(config: dict) -> Database:
    """(Re)connect mongoengine's default alias to the configured store."""
    global _embedded
    mongoengine.disconnect_all()
    _embedded = is_mongomock(config["MONGODB_HOST"])
    if _embedded:
        from recommender.store import embedded  # the test double only where it is used

        embedded.connect(config["DB_NAME"])
    else:
        mongoengine.connect(
            db=config["DB_NAME"],
            host=config["MONGODB_URI"],
            uuidRepresentation="standard",
            serverSelectionTimeoutMS=5000,
            tz_aware=False,
        )
    return mongoengine.get_db()


def is_embedded() -> bool:
    """Whether this process stores in the embedded (in-process, mongomock) store."""
    return _embedded


def id_list(ids: np.ndarray) -> list[int]:
    """int64 ids as the list a stored document holds (in the embedded store: shared int
    objects, see embedded.IdInterner)."""
    if _embedded:
        from recommender.store.embedded import interner

        return interner.ints(ids)
    return np.asarray(ids, dtype=np.int64).tolist()


def get_db() -> Database:
    """The raw pymongo database (for bulk operations mongoengine does not offer)."""
    return mongoengine.get_db()


def get_fs() -> gridfs.GridFS:
    return gridfs.GridFS(get_db())
