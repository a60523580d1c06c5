"""Create the indexes (and unique constraints) every document in recommender.models declares.

Run once at deployment, so no request pays for building an index and a database that predates
an index (or holds data violating a unique one) is caught here, with a clear failure, rather
than on the first write. The specs are read from the current models: re-applying after a model
gains an index creates it; existing indexes are left as they are.
"""

from __future__ import annotations

import inspect

from mongoengine import Document

import recommender.models
from recommender.migrate import BaseMigration


def declared_indexes() -> list[tuple[str, dict]]:
    """(collection name, mongoengine index spec) for every index the models declare."""
    documents = {
        cls
        for _, cls in inspect.getmembers(recommender.models, inspect.isclass)
        if issubclass(cls, Document) and not cls._meta.get("abstract")
    }
    return sorted(
        (
            (document._get_collection_name(), spec)
            for document in documents
            for spec in document._meta.get("index_specs", [])
        ),
        key=lambda item: (item[0], str(item[1]["fields"])),
    )


def index_name(spec: dict) -> str:
    """MongoDB's default name: each key and its direction, joined by underscores."""
    return spec.get("name") or "_".join(f"{key}_{direction}" for key, direction in spec["fields"])


class CreateDeclaredIndexes(BaseMigration):
    def up(self) -> None:
        for collection, spec in declared_indexes():
            options = {key: value for key, value in spec.items() if key != "fields"}
            self.db[collection].create_index(spec["fields"], **options)

    def down(self) -> None:
        for collection, spec in declared_indexes():
            if index_name(spec) in self.db[collection].index_information():
                self.db[collection].drop_index(index_name(spec))
