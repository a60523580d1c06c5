"""The users' accessed services and the services' statuses, read once from the store as the
evaluation protocol's `Interactions` (recommender.evaluation.protocol): what every
collaborative engine trains and is evaluated on."""

from __future__ import annotations

from recommender.evaluation.protocol import Interactions, build_interactions
from recommender.models.marketplace import RECOMMENDABLE_STATUSES, Service, User
from recommender.store import get_db
from recommender.store.snapshot import read_once


@read_once
def read_interactions() -> Interactions:
    """Users (id, accessed_services) and services (id, status), each read once, projected
    (once per training chain: `store.snapshot`)."""
    db = get_db()
    users = db[User._get_collection_name()].find({}, {"accessed_services": 1})
    services = db[Service._get_collection_name()].find({}, {"status": 1})
    return build_interactions(
        ((doc["_id"], doc.get("accessed_services")) for doc in users),
        ((doc["_id"], doc.get("status") in RECOMMENDABLE_STATUSES) for doc in services),
    )
