"""Small catalogues and Marketplace-shaped request bodies for the serving tests."""

from __future__ import annotations

import uuid

from recommender.dump.loader import load_catalogue
from recommender.dump.references import drop_dangling_references
from recommender.dump.schema import validate_dump
from recommender.models.activity import Action, Root, Source, Target, UserAction
from recommender.models.activity import action_fingerprint as fingerprint
from recommender.models.ops import utcnow
from tests.marketplace_dump import marketplace_dump

RECOMMENDABLE = ("published", "unverified")
# The fields of a /recommendations answer (and of the published message's response).
RESPONSE_KEYS = {
    "panel_id",
    "recommendations",
    "scores",
    "explanations",
    "explanations_short",
    "engine_version",
}


def load(dump: dict | None = None) -> dict:
    """Validate, clean and load `dump` (default: the hand-written Marketplace dump)."""
    dump = marketplace_dump() if dump is None else dump
    entities = validate_dump(dump)
    drop_dangling_references(entities)
    load_catalogue(entities)
    return dump


def recommendable_ids(dump: dict) -> set[int]:
    return {s["id"] for s in dump["services"] if s["status"] in RECOMMENDABLE}


def body(**overrides) -> dict:
    """A request as the Marketplace sends it (anonymous unless `user_id` is given)."""
    request = {
        "user_id": "",
        "unique_id": str(uuid.uuid4()),
        "timestamp": "2024-02-21T15:19:43.512+0100",
        "visit_id": str(uuid.uuid4()),
        "page_id": "/services",
        "panel_id": "v1",
        "engine_version": "RL",
        "search_data": {},
        "client_id": "marketplace",
    }
    request.update(overrides)
    return {k: v for k, v in request.items() if v is not ...}


def panel_click(service_id: int, root_type: str = "recommendation-panel", order: bool = False):
    """A stored user action: a click (or order) on `service_id` shown in a panel."""
    action = UserAction(
        unique_id=str(uuid.uuid4()),
        timestamp=utcnow(),
        source=Source(
            visit_id=str(uuid.uuid4()),
            page_id="/services",
            root=Root(type=root_type, panel_id="v1", resource_type="service", service=service_id),
        ),
        target=Target(visit_id=str(uuid.uuid4()), page_id=f"/services/{service_id}"),
        action=Action(type="button", text="Details", order=order),
    )
    action.fingerprint = fingerprint(action)
    return action.save()
