"""Connections shared by the app, the worker and the CLI: MongoDB (mongoengine) and GridFS."""

from __future__ import annotations

import gridfs
import mongoengine
import mongomock
import mongomock.gridfs
from pymongo.database import Database

from recommender import mongomock_speedups
from recommender.config import is_mongomock

# GridFS over mongomock needs this switch, once per process.
mongomock.gridfs.enable_gridfs_integration()


def connect_db(config: dict) -> Database:
    """(Re)connect mongoengine's default alias to the configured store."""
    mongoengine.disconnect_all()
    if is_mongomock(config["MONGODB_HOST"]):
        mongomock_speedups.install()
        mongoengine.connect(
            db=config["DB_NAME"],
            host="mongodb://localhost",
            mongo_client_class=mongomock.MongoClient,
            uuidRepresentation="standard",
        )
    else:
        mongoengine.connect(
            db=config["DB_NAME"],
            host=config["MONGODB_URI"],
            uuidRepresentation="standard",
            serverSelectionTimeoutMS=5000,
            tz_aware=False,
        )
    return mongoengine.get_db()


def get_db() -> Database:
    """The raw pymongo database (for bulk operations mongoengine does not offer)."""
    return mongoengine.get_db()


def get_fs() -> gridfs.GridFS:
    return gridfs.GridFS(get_db())
