"""`POST /user_actions`: what a visitor did on a client's page, stored once for training."""

from __future__ import annotations

from flask import Response, request
from flask_restx import Namespace, Resource

from recommender.api.openapi import register
from recommender.errors import InvalidInputError
from recommender.schemas.user_action import UserActionIn
from recommender.services.user_actions import count_rejected, store_user_action

ns = Namespace("user_actions", description="Visitors' actions (clicks, orders) for training")
user_action = register(ns, UserActionIn)


@ns.route("")
class UserActions(Resource):
    @ns.doc(
        description=(
            "Stores the action for training (every client's; each action once, even when it "
            "also arrives over the databus). Extra keys are accepted and ignored."
        )
    )
    @ns.expect(user_action, validate=False)  # validated by the pydantic model it documents
    @ns.response(204, "Stored (or already stored)")
    @ns.response(400, "Invalid action; `errors` maps each field to its problem")
    @ns.response(401, "Missing or wrong bearer token")
    def post(self):
        payload = request.get_json(silent=True)
        if payload is None and request.get_data():
            count_rejected("http")
            raise InvalidInputError({"(body)": "must be JSON"})
        store_user_action(payload, "http")
        return Response(status=204)
