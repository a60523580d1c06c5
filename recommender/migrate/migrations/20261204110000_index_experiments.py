"""Indexes for online experiments: served recommendations by experiment and serving time, user
actions by when they were stored (the results' incremental reads), experiments by status and
creation time. New deployments get them from the declared-index migration too; this one adds
them to databases that ran it before they existed. Existing indexes are left as they are."""

from __future__ import annotations

from recommender.migrate import BaseMigration
from recommender.models.activity import Recommendation, UserAction
from recommender.models.experiments import Experiment

INDEXES = [
    (Recommendation, [("experiment", 1), ("served_at", 1)]),
    (UserAction, [("received_at", 1)]),
    (Experiment, [("status", 1)]),
    (Experiment, [("created_at", -1)]),
]


def name(keys: list[tuple[str, int]]) -> str:
    return "_".join(f"{key}_{direction}" for key, direction in keys)


class IndexExperiments(BaseMigration):
    def up(self) -> None:
        for document, keys in INDEXES:
            self.db[document._get_collection_name()].create_index(keys)

    def down(self) -> None:
        for document, keys in INDEXES:
            collection = self.db[document._get_collection_name()]
            if name(keys) in collection.index_information():
                collection.drop_index(name(keys))
