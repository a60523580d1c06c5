"""Write synthetic data to the database: the dump as `/update` loads it, sessions in bulk."""

from __future__ import annotations

from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from recommender.dump.loader import load_catalogue
from recommender.dump.references import drop_dangling_references
from recommender.dump.schema import validate_dump
from recommender.models.activity import (
    Action,
    Recommendation,
    Root,
    SearchData,
    Source,
    Target,
    UserAction,
    action_fingerprint,
)
from recommender.services.user_actions import (
    PANEL_ROOT,
    PANEL_ROOT_SPELLINGS,
    RootIn,
    UserActionIn,
    validate_user_action,
)

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


def _root(root: RootIn | None) -> Root | None:
    """As the HTTP endpoint stores it: one spelling of the panel type, service ids as ints."""
    if root is None:
        return None
    is_service = root.resource_type == "service" and isinstance(root.resource_id, int)
    return Root(
        type=PANEL_ROOT if root.type in PANEL_ROOT_SPELLINGS else root.type,
        panel_id=root.panel_id,
        resource_type=root.resource_type,
        service=root.resource_id if is_service else None,
        resource_id=None if is_service or root.resource_id is None else str(root.resource_id),
    )


def user_action_document(payload: dict) -> dict:
    """A `POST /user_actions` payload (checked as the endpoint checks it) as stored over HTTP:
    a service root's `resource_id` becomes `Root.service`, with its fingerprint."""
    action: UserActionIn = validate_user_action(payload)
    document = UserAction(
        user=action.user_id,
        unique_id=action.unique_id,
        client_id=action.client_id,
        timestamp=action.timestamp,
        source=Source(
            visit_id=action.source.visit_id,
            page_id=action.source.page_id,
            root=_root(action.source.root),
        ),
        target=Target(visit_id=action.target.visit_id, page_id=action.target.page_id),
        action=Action(type=action.action.type, text=action.action.text, order=action.action.order),
        channel="http",
    )
    document.fingerprint = action_fingerprint(document)
    document.validate()
    return document.to_mongo().to_dict()


def insert_new(collection: Collection, documents: list[dict], key: str) -> int:
    """Insert, in bulk, the documents whose `key` is neither stored nor repeated; how many new.

    One `$in` query per batch (not one per document) finds the batch's keys already stored.
    """
    fresh: dict = {}
    for document in documents:
        fresh.setdefault(document[key], document)
    keys = list(fresh)
    new = 0
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        stored = {row[key] for row in collection.find({key: {"$in": batch}}, {key: 1})}
        new += _insert_many(collection, [fresh[k] for k in batch if k not in stored])
    return new


def _insert_many(collection: Collection, documents: list[dict]) -> int:
    """Insert all; how many were new (a concurrent writer's duplicate is refused and counted)."""
    if not documents:
        return 0
    try:
        collection.insert_many(documents, ordered=False)
    except BulkWriteError as error:
        errors = error.details.get("writeErrors", [])
        if any(e.get("code") != DUPLICATE_KEY for e in errors):
            raise
        return len(documents) - len(errors)
    return len(documents)


def write_sessions(recommendations: list[dict], user_actions: list[dict]) -> tuple[int, int]:
    """Store generated sessions in bulk, each once: a recommendation whose visit is stored, or
    an action whose fingerprint (its `_id`) is, is skipped. Returns how many of each were new."""
    return (
        insert_new(
            Recommendation._get_collection(),
            [recommendation_document(r) for r in recommendations],
            "visit_id",
        ),
        insert_new(
            UserAction._get_collection(),
            [user_action_document(p) for p in user_actions],
            "_id",
        ),
    )
