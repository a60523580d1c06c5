"""User actions from `POST /user_actions` and the databus: one validation, one way to store.

An action is stored once whichever channel brings it (the Marketplace sends each action over
HTTP and over the databus, and the broker redelivers unacknowledged messages): the document's
`_id` is its content fingerprint, so a duplicate insert is refused by the primary key and
counted, not an error.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, StrictBool, ValidationError
from pymongo.errors import BulkWriteError

from recommender.metrics import (
    USER_ACTIONS_DUPLICATE,
    USER_ACTIONS_REJECTED,
    USER_ACTIONS_STORED,
)
from recommender.models.activity import (
    Action,
    Root,
    Source,
    Target,
    UserAction,
    action_fingerprint,
)
from recommender.models.marketplace import User
from recommender.panels import PANEL_ROOT, PANEL_ROOT_SPELLINGS
from recommender.services.timestamps import parse_client_timestamp

CLIENT_IDS = ("marketplace", "search_service", "user_dashboard", "undefined")
DUPLICATE_KEY = 11000


class UserActionError(ValueError):
    """An action that cannot be stored; `errors` maps each bad field (dotted path) to why."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{field}: {why}" for field, why in errors.items()))
        self.errors = errors


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate from JSON's \ud800: MongoDB refuses it
        raise ValueError(f"{value!r} is not valid Unicode text") from None
    return value


def _optional_text(value: Any) -> str | None:
    return None if value is None else _text(value)


def _uuid(value: Any) -> str:
    if isinstance(value, str):
        try:
            return str(uuid.UUID(value))
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not a valid UUID")


def _optional_uuid(value: Any) -> str | None:
    return None if value is None else _uuid(value)


def _timestamp(value: Any) -> dt.datetime:
    if isinstance(value, str):
        try:
            return parse_client_timestamp(value)
        except ValueError:
            pass
    raise ValueError(f"{value!r} is not an ISO 8601 date-time (e.g. 2024-02-21T15:19:43.512+0100)")


def _int64(value: int, what: str) -> int:
    # MongoDB stores 8-byte integers: a larger id cannot be stored (nor exist in the catalogue).
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"{value} is out of range for {what} (64-bit integers)")
    return value


def _user_id(value: Any) -> int | None:
    """An integer; "" and null mean no user (the Marketplace sends "" for anonymous visitors)."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _int64(value, "a user id")
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return _int64(int(value), "a user id")
    raise ValueError(f"{value!r} is not an integer user id")


def _resource_id(value: Any) -> int | str | None:
    """Marketplace services have integer ids; other clients' resources may have string ids."""
    if isinstance(value, str):
        return _text(value)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return _int64(value, "a resource id")
    raise ValueError(f"{value!r} is not an integer or string id")


Text = Annotated[str, PlainValidator(_text)]
OptionalText = Annotated[str | None, PlainValidator(_optional_text)]
Uuid = Annotated[str, PlainValidator(_uuid)]
OptionalUuid = Annotated[str | None, PlainValidator(_optional_uuid)]
Timestamp = Annotated[dt.datetime, PlainValidator(_timestamp)]
UserId = Annotated[int | None, PlainValidator(_user_id)]
ResourceId = Annotated[int | str | None, PlainValidator(_resource_id)]


class _Part(BaseModel):
    # Clients add keys of their own: accepted and ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class RootIn(_Part):
    type: Text
    panel_id: OptionalText = None
    resource_type: OptionalText = None
    resource_id: ResourceId = None


class SourceIn(_Part):
    visit_id: OptionalUuid = None
    page_id: Text
    root: RootIn | None = None


class TargetIn(_Part):
    visit_id: Uuid
    page_id: Text


class ActionIn(_Part):
    type: Text
    text: Text
    order: StrictBool


class UserActionIn(_Part):
    """A checked user action (the original's "User Action" schema)."""

    user_id: UserId = None
    aai_uid: OptionalText = None
    unique_id: Uuid
    client_id: OptionalText = None
    timestamp: Timestamp
    source: SourceIn
    target: TargetIn
    action: ActionIn


def _field(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(body)"


def _message(error: dict) -> str:
    if error["type"] == "missing":
        return f"'{error['loc'][-1]}' is a required property"
    if error["type"] == "value_error":
        return str(error["ctx"]["error"])
    return error["msg"]


def validate_user_action(payload: Any, *, known_clients_only: bool = True) -> UserActionIn:
    """The checked action, or UserActionError naming every bad field.

    `known_clients_only`: `client_id` must be one of CLIENT_IDS (the HTTP contract); the
    databus accepts any client name, as the original did.
    """
    if not isinstance(payload, dict):
        raise UserActionError({"(body)": "must be a JSON object"})
    try:
        action = UserActionIn.model_validate(payload)
    except ValidationError as error:
        raise UserActionError(
            {_field(e["loc"]): _message(e) for e in error.errors(include_url=False)}
        ) from None
    if known_clients_only and action.client_id is not None and action.client_id not in CLIENT_IDS:
        raise UserActionError(
            {"client_id": f"{action.client_id!r} is not one of {', '.join(CLIENT_IDS)}"}
        )
    return action


def _root(root: RootIn | None) -> Root | None:
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


def action_document(action: UserActionIn, user_id: int | None, channel: str) -> dict:
    """The stored form of a validated action (service root -> `Root.service`, fingerprint)."""
    document = UserAction(
        user=user_id,
        aai_uid=action.aai_uid,
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
        channel=channel,
        processed=False,
    )
    document.fingerprint = action_fingerprint(document)
    return document.to_mongo().to_dict()


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
    if new < len(stored):
        USER_ACTIONS_DUPLICATE.labels(source).inc(len(stored) - new)
    return stored


def store_user_action(payload: Any, source: str, *, known_clients_only: bool = True) -> bool:
    """Check and store one action: True when stored, False when it already was.

    Raises UserActionError (counted as rejected) when the payload is not a valid action.
    """
    try:
        action = validate_user_action(payload, known_clients_only=known_clients_only)
    except UserActionError:
        USER_ACTIONS_REJECTED.labels(source).inc()
        raise
    return store_actions([action], source)[0]
