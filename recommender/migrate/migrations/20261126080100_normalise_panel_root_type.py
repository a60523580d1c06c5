"""Store the recommendation panel's root type with one spelling: `recommendation_panel`.

The Marketplace writes `recommendation-panel`, older clients `recommendation_panel`; ingestion
now stores the second, so actions stored before it (or imported) may hold the first. Each such
action gets the new spelling and a recomputed fingerprint (so the same action sent again is
still recognised as stored); a legacy action whose new fingerprint is already stored is a
duplicate of that action and is deleted.

down() is a no-op: which actions had the other spelling is not kept.
"""

from __future__ import annotations

from pymongo import DeleteOne, UpdateMany

from recommender.migrate import BaseMigration
from recommender.models.activity import UserAction, action_fingerprint

LEGACY, CURRENT = "recommendation-panel", "recommendation_panel"


class NormalisePanelRootType(BaseMigration):
    def up(self) -> None:
        actions = self.db[UserAction._get_collection_name()]
        legacy = list(actions.find({"source.root.type": LEGACY}))
        new_fingerprints = {}
        for document in legacy:
            document["source"]["root"]["type"] = CURRENT
            new_fingerprints[document["_id"]] = action_fingerprint(UserAction._from_son(document))
        # fingerprint -> _id of the action holding it
        stored = {
            row["fingerprint"]: row["_id"]
            for row in actions.find(
                {"fingerprint": {"$in": list(new_fingerprints.values())}}, {"fingerprint": 1}
            )
        }
        operations = []
        for _id, fingerprint in new_fingerprints.items():
            if stored.get(fingerprint, _id) != _id:
                operations.append(DeleteOne({"_id": _id}))
            else:
                stored[fingerprint] = _id
                operations.append(  # UpdateMany on an _id: mongomock rejects UpdateOne in bulks
                    UpdateMany(
                        {"_id": _id},
                        {"$set": {"source.root.type": CURRENT, "fingerprint": fingerprint}},
                    )
                )
        if operations:
            actions.bulk_write(operations, ordered=True)

    def down(self) -> None:
        pass
