"""`POST /user_actions` and the databus: what a visitor did on a client's page, and its stored
form (the same action from either channel gets the same document, with the same `_id`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    ValidationError,
    WithJsonSchema,
)

from recommender.errors import InvalidInputError, pydantic_errors
from recommender.models.activity import Action, Root, Source, Target, UserAction, action_fingerprint
from recommender.models.ops import utcnow
from recommender.panels import PANEL_ROOT, PANEL_ROOT_SPELLINGS
from recommender.schemas.recommendation import CLIENT_IDS
from recommender.schemas.validators import (
    OptionalText,
    OptionalUuid,
    Text,
    Timestamp,
    UserId,
    Uuid,
    check_int64,
    check_text,
)


def _resource_id(value: Any) -> int | str | None:
    """Marketplace services have integer ids; other clients' resources may have string ids."""
    if value is None:
        return None
    return check_text(value) if isinstance(value, str) else check_int64(value)


ResourceId = Annotated[
    int | str | None,
    PlainValidator(_resource_id),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}],
            "description": "Service id (integer); other clients' resources may have string ids",
        }
    ),
]


class _Part(BaseModel):
    # Clients add keys of their own: accepted and ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class RootIn(_Part):
    model_config = ConfigDict(title="Root info")
    type: Text = Field(
        description=(
            "Where the path started; `recommendation-panel` and `recommendation_panel` both "
            "mean the recommendation panel"
        ),
        examples=["recommendation_panel"],
    )
    panel_id: OptionalText = Field(None, description="Panel version shown", examples=["v1"])
    resource_type: OptionalText = Field(
        None, description="`service` for a Marketplace service", examples=["service"]
    )
    resource_id: ResourceId = None


class SourceIn(_Part):
    model_config = ConfigDict(title="Source")
    visit_id: OptionalUuid = Field(
        description="UUID of the page visit the action started on; null on a first view"
    )
    page_id: Text = Field(examples=["/services"])
    # Absent when the path did not start at a panel; null is not accepted.
    root: RootIn = Field(None, description="Set when the path started at a panel")


class TargetIn(_Part):
    model_config = ConfigDict(title="Target")
    visit_id: Uuid = Field(description="UUID of the page visit the action led to")
    page_id: Text = Field(examples=["/services/egi-notebooks"])


class ActionIn(_Part):
    model_config = ConfigDict(title="Action")
    type: Text = Field(examples=["button"])
    text: Text = Field(examples=["Details"])
    order: StrictBool = Field(description="True when the action ordered the service")


class UserActionIn(_Part):
    """A checked user action (the original's "User Action" schema)."""

    model_config = ConfigDict(title="User Action")
    user_id: UserId = None
    aai_uid: OptionalText = Field(
        None,
        description="AAI id of the user (resolved to a user when user_id is absent)",
        examples=["abc@egi.eu"],
    )
    unique_id: Uuid = Field(description="UUID of the visitor's browser")
    client_id: OptionalText = Field(
        None, description=f"One of {', '.join(CLIENT_IDS)}", examples=["marketplace"]
    )
    timestamp: Timestamp
    source: SourceIn
    target: TargetIn
    action: ActionIn


def validate_user_action(payload: Any, *, known_clients_only: bool = True) -> UserActionIn:
    """The checked action, or InvalidInputError naming every bad field.

    `known_clients_only`: `client_id` must be one of CLIENT_IDS (the HTTP contract); the
    databus accepts any client name, as the original did.
    """
    if not isinstance(payload, dict):
        raise InvalidInputError({"(body)": "must be a JSON object"})
    try:
        action = UserActionIn.model_validate(payload)
    except ValidationError as error:
        raise InvalidInputError(pydantic_errors(error.errors(include_url=False))) from None
    if known_clients_only and action.client_id is not None and action.client_id not in CLIENT_IDS:
        raise InvalidInputError(
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
        received_at=utcnow(),
        processed=False,
    )
    document.fingerprint = action_fingerprint(document)
    return document.to_mongo().to_dict()
