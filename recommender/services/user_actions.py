"""User actions from `POST /user_actions` and the databus: one validation, one way to store.

An action is stored once whichever channel brings it (the Marketplace sends each action over
HTTP and over the databus, and the broker redelivers unacknowledged messages): the document's
`_id` is its content fingerprint, so a duplicate insert is refused by the primary key and
counted, not an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pymongo.errors import BulkWriteError

from recommender.errors import InvalidInputError
from recommender.metrics import (
    USER_ACTIONS_DUPLICATE,
    USER_ACTIONS_REJECTED,
    USER_ACTIONS_STORED,
)
from recommender.models.activity import UserAction
from recommender.models.marketplace import User
from recommender.schemas.user_action import UserActionIn, action_document, validate_user_action
from recommender.services.traffic import DUPLICATE, REJECTED, STORED, count_actions

DUPLICATE_KEY = 11000


def _users_by_aai_uid(aai_uids: Iterable[str]) -> dict[str, int]:
    wanted = sorted(set(aai_uids))
    if not wanted:
        return {}
    found = User._get_collection().find({"aai_uid": {"$in": wanted}}, {"_id": 1, "aai_uid": 1})
    return {user["aai_uid"]: user["_id"] for user in found}


def _insert(documents: list[dict]) -> list[bool]:
    """Insert all; True for each new document, False for each already stored."""
    stored = [True] * len(documents)
    if not documents:
        return stored
    try:
        UserAction._get_collection().insert_many(documents, ordered=False)
    except BulkWriteError as error:
        write_errors = error.details.get("writeErrors", [])
        others = [e for e in write_errors if e.get("code") != DUPLICATE_KEY]
        if others:
            raise
        for write_error in write_errors:
            stored[write_error["index"]] = False
    return stored


def store_actions(actions: Sequence[UserActionIn], source: str) -> list[bool]:
    """Store checked actions in one bulk write; True for each new one, False for a duplicate.

    `source` ("http" or "databus") labels the counters and the stored `channel`. A user given
    only by `aai_uid` is resolved to the user's id (left empty when unknown).
    """
    users = _users_by_aai_uid(a.aai_uid for a in actions if a.user_id is None and a.aai_uid)
    documents = [
        action_document(
            a, a.user_id if a.user_id is not None else users.get(a.aai_uid or ""), source
        )
        for a in actions
    ]
    stored = _insert(documents)
    new = sum(stored)
    if new:
        USER_ACTIONS_STORED.labels(source).inc(new)
        count_actions(source, STORED, new)
    if new < len(stored):
        USER_ACTIONS_DUPLICATE.labels(source).inc(len(stored) - new)
        count_actions(source, DUPLICATE, len(stored) - new)
    return stored


def count_rejected(source: str, amount: int = 1) -> None:
    """Count `amount` actions from `source` refused as invalid (metrics and traffic)."""
    USER_ACTIONS_REJECTED.labels(source).inc(amount)
    count_actions(source, REJECTED, amount)


def store_user_action(payload: Any, source: str, *, known_clients_only: bool = True) -> bool:
    """Check and store one action: True when stored, False when it already was.

    Raises InvalidInputError (counted as rejected) when the payload is not a valid action.
    """
    try:
        action = validate_user_action(payload, known_clients_only=known_clients_only)
    except InvalidInputError:
        count_rejected(source)
        raise
    return store_actions([action], source)[0]
