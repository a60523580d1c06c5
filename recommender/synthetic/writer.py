"""Write synthetic data to the database: the dump as `/update` loads it, sessions in bulk."""

from __future__ import annotations

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from recommender.dump.loader import load_catalogue
from recommender.dump.references import drop_dangling_references
from recommender.dump.schema import validate_dump
from recommender.models.activity import Recommendation, SearchData, UserAction
from recommender.schemas.user_action import action_document, validate_user_action

BATCH = 10_000
DUPLICATE_KEY = 11000


def write_marketplace(dump: dict) -> dict:
    """Replace the catalogue with `dump` the way `/update` does (validated, references cleaned,
    loaded atomically); users are flagged `synthetic`. Returns counts and dropped references."""
    entities = validate_dump(dump)
    dropped = drop_dangling_references(entities)
    for user in entities["users"]:
        user["synthetic"] = True
    return {"counts": load_catalogue(entities), "dropped_references": dropped}


def recommendation_document(record: dict) -> dict:
    """A generated recommendation record as the `recommendation` collection stores it."""
    search = SearchData(**record["search_data"])
    document = Recommendation(**{**record, "search_data": search})
    document.validate()
    return document.to_mongo().to_dict()


def user_action_document(payload: dict) -> dict:
    """A `POST /user_actions` payload, checked and stored exactly as the endpoint stores it."""
    action = validate_user_action(payload)
    return action_document(action, action.user_id, "http")


def insert_new(collection: Collection, documents: list[dict], key: str) -> int:
    """Insert, in bulk, the documents whose `key` is neither stored nor repeated; how many new.

    One projected read of the collection (not one query per document) finds the stored keys.
    """
    seen = {d.get(key) for d in collection.find({}, {key: 1, "_id": 0})}
    fresh = []
    for document in documents:
        if document[key] not in seen:
            seen.add(document[key])
            fresh.append(document)
    return insert_by_id(collection, fresh)


def insert_by_id(collection: Collection, documents: list[dict]) -> int:
    """Insert in unordered batches; how many were new. A document whose `_id` is stored (or
    earlier in `documents`) is refused by the primary key and not counted: no read first
    (mongomock answers an `_id: {$in: ...}` query by scanning, a refused insert by a lookup)."""
    new = 0
    for start in range(0, len(documents), BATCH):
        batch = documents[start : start + BATCH]
        try:
            collection.insert_many(batch, ordered=False)
        except BulkWriteError as error:
            errors = error.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            new -= len(errors)
        new += len(batch)
    return new


def write_sessions(recommendations: list[dict], user_actions: list[dict]) -> tuple[int, int]:
    """Store generated sessions in bulk, each once: a recommendation whose visit is stored, or
    an action whose fingerprint (its `_id`) is, is skipped. Returns how many of each were new."""
    return (
        insert_new(
            Recommendation._get_collection(),
            [recommendation_document(r) for r in recommendations],
            "visit_id",
        ),
        insert_by_id(UserAction._get_collection(), [user_action_document(p) for p in user_actions]),
    )
