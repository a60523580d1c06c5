"""The base class of every migration."""

from __future__ import annotations

from pymongo.database import Database


class BaseMigration:
    """One change of the stored data, in a file `YYYYMMDDHHMMSS_snake_name.py` of migrations/.

    The file defines exactly one subclass (any class name). `up()` makes the change and `down()`
    undoes it; both use `self.db`, the raw pymongo database (the models may have moved on since
    the migration was written, so migrations do not go through mongoengine documents).
    """

    def __init__(self, db: Database) -> None:
        self.db = db

    def up(self) -> None:
        raise NotImplementedError

    def down(self) -> None:
        raise NotImplementedError
