"""Store the recommendation panel's root type with one spelling: `recommendation_panel`.

The Marketplace writes `recommendation-panel`, older clients `recommendation_panel`; ingestion
now stores the second, so actions stored before it (or imported) may hold the first. Each such
action gets the new spelling and a recomputed fingerprint (so the same action sent again is
still recognised as stored). The fingerprint is the action's `_id`, which MongoDB cannot
update: the renormalised action is inserted under its new `_id` and the old one deleted. A
legacy action whose new fingerprint is already stored is a duplicate of that action and is
only deleted.

down() is a no-op: which actions had the other spelling is not kept.
"""

from __future__ import annotations

from pymongo import DeleteOne, InsertOne

from recommender.migrate import BaseMigration
from recommender.models.activity import UserAction, action_fingerprint

LEGACY, CURRENT = "recommendation-panel", "recommendation_panel"


class NormalisePanelRootType(BaseMigration):
    def up(self) -> None:
        actions = self.db[UserAction._get_collection_name()]
        renamed = {}  # old _id -> the action with the current spelling, under its new _id
        for document in actions.find({"source.root.type": LEGACY}):
            document["source"]["root"]["type"] = CURRENT
            renamed[document["_id"]] = {
                **document,
                "_id": action_fingerprint(UserAction._from_son(document)),
            }
        new_ids = [document["_id"] for document in renamed.values()]
        stored = {row["_id"] for row in actions.find({"_id": {"$in": new_ids}}, {"_id": 1})}
        operations: list = []
        for old_id, document in renamed.items():
            if document["_id"] not in stored:
                stored.add(document["_id"])
                operations.append(InsertOne(document))
            # Inserted before deleted: an interrupted run loses nothing (re-run, the legacy
            # copy is found stored under its new _id and only deleted).
            operations.append(DeleteOne({"_id": old_id}))
        if operations:
            actions.bulk_write(operations, ordered=True)

    def down(self) -> None:
        pass
