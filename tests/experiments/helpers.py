"""Experiments in tests: definitions, served requests and the actions that follow them."""

from __future__ import annotations

import datetime as dt
import uuid

from recommender.models.activity import UserAction
from recommender.schemas.user_action import action_document, validate_user_action
from tests.api.helpers import body

SETTLED = dt.timedelta(0)  # tests flush the deferred writer first: nothing is still in flight


def definition(**overrides) -> dict:
    value = {
        "name": "random-vs-popularity",
        "variants": [
            {"name": "control", "engine": "Random", "share": 0.5},
            {"name": "treatment", "engine": "Popularity", "share": 0.5},
        ],
    }
    value.update(overrides)
    return value


def serve(client, visitor: str | None = None, **overrides) -> dict:
    """One panel request of an anonymous visitor (its browser id `visitor`); the answer, and the
    visit it was shown in under "visit"."""
    request = body(unique_id=visitor or str(uuid.uuid4()), **overrides)
    answer = client.post("/recommendations", json=request)
    assert answer.status_code == 200, answer.get_json()
    return {**answer.get_json(), "visit": request["visit_id"], "visitor": request["unique_id"]}


def action(
    visitor: str,
    source_visit: str | None,
    target_visit: str,
    service: int | None = None,
    order: bool = False,
    when: dt.datetime | None = None,
    root_type: str = "recommendation_panel",
) -> dict:
    """A user action as a client sends it: from `source_visit` to `target_visit`, started at the
    panel on `service` (when given)."""
    payload = {
        "unique_id": visitor,
        "timestamp": (when or dt.datetime.now(dt.UTC)).isoformat(),
        "source": {"visit_id": source_visit, "page_id": "/services"},
        "target": {"visit_id": target_visit, "page_id": f"/services/{service or 'x'}"},
        "action": {"type": "button", "text": "Order" if order else "Details", "order": order},
        "client_id": "marketplace",
    }
    if service is not None:
        payload["source"]["root"] = {
            "type": root_type,
            "panel_id": "v1",
            "resource_type": "service",
            "resource_id": service,
        }
    return payload


def store(*payloads: dict) -> None:
    """Store actions as `POST /user_actions` does (bulk, for speed)."""
    documents = []
    for payload in payloads:
        checked = validate_user_action(payload)
        documents.append(action_document(checked, checked.user_id, "http"))
    UserAction._get_collection().insert_many(documents)
