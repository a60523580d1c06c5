"""The indexes the operations dashboard reads with (recommender/services/dashboard/).

- a user's newest recommendations, by user id or by aai_uid (`user`/`aai_uid`, then newest
  `timestamp` first: the page takes the first 50 without sorting a heavy user's history),
- every pipeline run newest first (`start_time`; per pipeline, an index exists already), and
  the last update (`created_at`),
- the traffic rollups: one counter per span, bucket and labels (unique, so concurrent upserts
  from several processes cannot make two; it also serves the reads), and a TTL index that
  deletes each bucket at its `expires_at`.

The models declare the same indexes (a new database gets them from the first migration;
creating an existing index with the same options does nothing).
"""

from __future__ import annotations

from recommender.migrate import BaseMigration

INDEXES: list[tuple[str, list[tuple[str, int]], dict]] = [
    ("recommendation", [("user", 1), ("timestamp", -1)], {}),
    ("recommendation", [("aai_uid", 1), ("timestamp", -1)], {}),
    ("pipeline_metadata", [("start_time", -1)], {}),
    ("update_task", [("created_at", -1)], {}),
    (
        "recommendation_traffic",
        [("span", 1), ("bucket", 1), ("expires_at", 1), ("engine", 1), ("panel_id", 1)],
        {"unique": True},
    ),
    ("recommendation_traffic", [("expires_at", 1)], {"expireAfterSeconds": 0}),
    (
        "user_action_traffic",
        [("span", 1), ("bucket", 1), ("expires_at", 1), ("source", 1), ("outcome", 1)],
        {"unique": True},
    ),
    ("user_action_traffic", [("expires_at", 1)], {"expireAfterSeconds": 0}),
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
