"""The indexes the operations dashboard reads with (recommender/services/dashboard/).

- a user's newest recommendations, by user id or by aai_uid (`user`/`aai_uid`, then newest
  `timestamp` first: the page takes the first 50 without sorting a heavy user's history),
- every pipeline run newest first (`start_time`; per pipeline, an index exists already),
- the traffic rollups: one counter per bucket and labels (unique, so concurrent upserts from
  several processes cannot make two), and a TTL index that deletes buckets after 8 days.

The models declare the same indexes (a new database gets them from the first migration;
creating an existing index with the same options does nothing).
"""

from __future__ import annotations

from recommender.migrate import BaseMigration

KEPT_S = 8 * 24 * 3600
INDEXES: list[tuple[str, list[tuple[str, int]], dict]] = [
    ("recommendation", [("user", 1), ("timestamp", -1)], {}),
    ("recommendation", [("aai_uid", 1), ("timestamp", -1)], {}),
    ("pipeline_metadata", [("start_time", -1)], {}),
    (
        "recommendation_traffic",
        [("bucket", 1), ("engine", 1), ("panel_id", 1)],
        {"unique": True},
    ),
    ("recommendation_traffic", [("bucket", 1)], {"expireAfterSeconds": KEPT_S}),
    ("user_action_traffic", [("bucket", 1), ("source", 1), ("outcome", 1)], {"unique": True}),
    ("user_action_traffic", [("bucket", 1)], {"expireAfterSeconds": KEPT_S}),
]


def name_of(keys: list[tuple[str, int]]) -> str:
    return "_".join(f"{key}_{direction}" for key, direction in keys)


class IndexDashboardReads(BaseMigration):
    def up(self) -> None:
        for collection, keys, options in INDEXES:
            self.db[collection].create_index(keys, **options)

    def down(self) -> None:
        for collection, keys, _ in INDEXES:
            if name_of(keys) in self.db[collection].index_information():
                self.db[collection].drop_index(name_of(keys))
