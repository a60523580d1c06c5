"""Index the databus outbox: the sparse `published` index of stored recommendations.

A database migrated before the outbox existed lacks it (the first migration creates only the
indexes declared when it ran there). Sparse: only Marketplace recommendations carry the flag,
so the index stays small and the worker's scan for waiting documents uses it.
"""

from __future__ import annotations

from recommender.migrate import BaseMigration
from recommender.models.activity import Recommendation

FIELDS = [("published", 1)]


class IndexTheDatabusOutbox(BaseMigration):
    def up(self) -> None:
        self.db[Recommendation._get_collection_name()].create_index(FIELDS, sparse=True)

    def down(self) -> None:
        collection = self.db[Recommendation._get_collection_name()]
        if "published_1" in collection.index_information():
            collection.drop_index("published_1")
