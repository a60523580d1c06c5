"""`POST /user_actions`: what a visitor did on a client's page, stored once for training."""

from __future__ import annotations

from flask import Response, request
from flask_restx import Namespace, Resource, fields
from werkzeug.exceptions import BadRequest

from recommender.api.errors import PayloadError
from recommender.api.schema_fields import (
    TIMESTAMP,
    UNIQUE_ID,
    USER_ID,
    NullableString,
    NullableUuid,
    Uuid,
)
from recommender.metrics import USER_ACTIONS_REJECTED
from recommender.services.user_actions import CLIENT_IDS, UserActionError, store_user_action

ns = Namespace("user_actions", description="Visitors' actions (clicks, orders) for training")


class ResourceId(fields.String):
    __schema_type__ = ["integer", "string", "null"]


root = ns.model(
    "Root info",
    {
        "type": fields.String(
            required=True,
            description=(
                "Where the path started; `recommendation-panel` and `recommendation_panel` both "
                "mean the recommendation panel"
            ),
            example="recommendation_panel",
        ),
        "panel_id": NullableString(description="Panel version shown", example="v1"),
        "resource_type": NullableString(
            description="`service` for a Marketplace service", example="service"
        ),
        "resource_id": ResourceId(
            description="Service id (integer); other clients' resources may have string ids",
            example=1234,
        ),
    },
)
source = ns.model(
    "Source",
    {
        "visit_id": NullableUuid(
            required=True,
            description="UUID of the page visit the action started on; null on a first view",
            example="202b9e2e-48a4-4d4e-b8a0-ae5b5e4b3c1d",
        ),
        "page_id": fields.String(required=True, example="/services"),
        "root": fields.Nested(root, description="Set when the path started at a panel"),
    },
)
target = ns.model(
    "Target",
    {
        "visit_id": Uuid(
            required=True,
            description="UUID of the page visit the action led to",
            example="9f3b6d1e-8c0a-4b7e-9d2f-1a2b3c4d5e6f",
        ),
        "page_id": fields.String(required=True, example="/services/egi-notebooks"),
    },
)
action = ns.model(
    "Action",
    {
        "type": fields.String(required=True, example="button"),
        "text": fields.String(required=True, example="Details"),
        "order": fields.Boolean(
            required=True, description="True when the action ordered the service", example=False
        ),
    },
)
user_action = ns.model(
    "User Action",
    {
        "user_id": USER_ID,
        "aai_uid": NullableString(
            description="AAI id of the user (resolved to a user when user_id is absent)",
            example="abc@egi.eu",
        ),
        "unique_id": UNIQUE_ID,
        "client_id": fields.String(enum=list(CLIENT_IDS), example="marketplace"),
        "timestamp": TIMESTAMP,
        "source": fields.Nested(source, required=True),
        "target": fields.Nested(target, required=True),
        "action": fields.Nested(action, required=True),
    },
)


@ns.route("")
class UserActions(Resource):
    def validate_payload(self, func):
        # Schema failures are answered by flask-restx before `post` runs: count them here.
        try:
            super().validate_payload(func)
        except BadRequest:
            USER_ACTIONS_REJECTED.labels("http").inc()
            raise

    @ns.doc(
        description=(
            "Stores the action for training (every client's; each action once, even when it "
            "also arrives over the databus). Extra keys are accepted and ignored."
        )
    )
    @ns.expect(user_action, validate=True)
    @ns.response(204, "Stored (or already stored)")
    @ns.response(400, "Invalid action; `errors` maps each field to its problem")
    @ns.response(401, "Missing or wrong bearer token")
    def post(self):
        try:
            store_user_action(request.get_json(), "http")
        except UserActionError as error:
            raise PayloadError(error.errors) from None
        return Response(status=204)
