"""The recommendations page: what a user (by id or aai_uid) or a visit was served, by which
engine, and what was clicked next on that page.

Every read is indexed: recommendations by (`user`, `timestamp`), (`aai_uid`, `timestamp`) or
`visit_id`, newest first and at most LIMIT of them (without their candidate lists); the actions
started on those pages by `source.visit_id`; service names by `_id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic_core import PydanticCustomError

from recommender.errors import InvalidInputError
from recommender.models.activity import Recommendation, UserAction
from recommender.models.marketplace import Service, User
from recommender.panels import PANEL_ROOT_SPELLINGS
from recommender.schemas.validators import check_user_id, check_uuid
from recommender.store import get_db

KINDS: dict[str, str] = {"user": "user id", "aai_uid": "aai_uid", "visit": "visit id"}
LIMIT = 50
SHOWN = {
    "user": 1,
    "aai_uid": 1,
    "timestamp": 1,
    "visit_id": 1,
    "page_id": 1,
    "panel_id": 1,
    "engine_version": 1,
    "services": 1,
    "client_id": 1,
}
ACTION_SHOWN = {"timestamp": 1, "source": 1, "target": 1, "action": 1, "channel": 1}


@dataclass
class Served:
    recommendation: dict[str, Any]
    services: list[tuple[int, str | None]]  # (id, name) in the order shown
    next_actions: list[dict[str, Any]] = field(default_factory=list)  # oldest first

    def clicked(self, action: dict[str, Any]) -> bool:
        """Whether `action` started in this panel on one of the services it showed."""
        root = action["source"].get("root") or {}
        return root.get("type") in PANEL_ROOT_SPELLINGS and any(
            root.get("service") == service for service, _ in self.services
        )


@dataclass(frozen=True)
class Lookup:
    kind: str
    value: str
    user: dict[str, Any] | None  # the stored user, when the look-up names one
    served: list[Served]
    more: bool  # more than LIMIT were served; the newest LIMIT are shown


def lookup(kind: str, value: str) -> Lookup:
    """What `value` (a user id, aai_uid or visit id, as `kind` says) was served; raises
    InvalidInputError naming `q` when `value` is not one."""
    query, user = _query(kind, value.strip())
    rows = list(
        get_db()[Recommendation._get_collection_name()]
        .find(query, SHOWN)
        .sort("timestamp", -1)
        .limit(LIMIT + 1)
    )
    served = _served(rows[:LIMIT])
    return Lookup(kind, value.strip(), user, served, more=len(rows) > LIMIT)


def _query(kind: str, value: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    users = get_db()[User._get_collection_name()]
    try:
        if kind == "user":
            user_id = check_user_id(value)
            if user_id is None:
                raise PydanticCustomError("user_id", "give a user id")
            user = users.find_one({"_id": user_id}, {"aai_uid": 1})
            return _by_user(user_id, (user or {}).get("aai_uid")), user
        if kind == "aai_uid":
            if not value:
                raise PydanticCustomError("aai_uid", "give an aai_uid")
            user = users.find_one({"aai_uid": value}, {"aai_uid": 1})
            return _by_user(user["_id"] if user else None, value), user
        if kind == "visit":
            return {"visit_id": check_uuid(value)}, None
    except PydanticCustomError as error:
        raise InvalidInputError({"q": error.message()}) from None
    raise InvalidInputError({"kind": f"must be one of {', '.join(KINDS)}"})


def _by_user(user_id: int | None, aai_uid: str | None) -> dict[str, Any]:
    """Recommendations stored with the user's id or with the aai_uid it logged in with."""
    either = [{"user": user_id}] if user_id is not None else []
    either += [{"aai_uid": aai_uid}] if aai_uid else []
    return {"$or": either}


def _served(rows: list[dict[str, Any]]) -> list[Served]:
    ids = sorted({service for row in rows for service in row.get("services") or []})
    names = {
        row["_id"]: row.get("name")
        for row in get_db()[Service._get_collection_name()].find({"_id": {"$in": ids}}, {"name": 1})
    }
    served = [
        Served(row, [(service, names.get(service)) for service in row.get("services") or []])
        for row in rows
    ]
    by_visit: dict[str, list[Served]] = {}
    for item in served:
        if item.recommendation.get("visit_id"):
            by_visit.setdefault(item.recommendation["visit_id"], []).append(item)
    if by_visit:
        actions = (
            get_db()[UserAction._get_collection_name()]
            .find({"source.visit_id": {"$in": sorted(by_visit)}}, ACTION_SHOWN)
            .sort("timestamp", 1)
        )
        for action in actions:
            for item in by_visit[action["source"]["visit_id"]]:
                item.next_actions.append(action)
    return served
