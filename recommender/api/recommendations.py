"""`POST /recommendations`: the original's request schema, validated, with examples."""

from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource, fields
from werkzeug.exceptions import UnsupportedMediaType

from recommender.api.schema_fields import (
    TIMESTAMP,
    UNIQUE_ID,
    USER_ID,
    NullableString,
    NullableUuid,
)
from recommender.engines import registry
from recommender.services import recommendations as service

ns = Namespace("recommendations", description="Recommended services for a Marketplace panel")


IDS = "Ids; the Marketplace already includes descendant ids"
search_data = ns.model(
    "Search Data",
    {
        "q": NullableString(description="Search text", example="cloud storage"),
        "categories": fields.List(fields.Integer, description=IDS, example=[1, 2]),
        "geographical_availabilities": fields.List(
            fields.String, description="Country codes", example=["WW", "PL"]
        ),
        "order_type": NullableString(example="open_access"),
        "providers": fields.List(fields.Integer, description=IDS, example=[3]),
        "rating": NullableString(description="Accepted, not used", example="5"),
        "related_platforms": fields.List(fields.Integer, description=IDS, example=[4]),
        "scientific_domains": fields.List(fields.Integer, description=IDS, example=[5, 6]),
        "sort": NullableString(example="_score"),
        "target_users": fields.List(fields.Integer, description=IDS, example=[7]),
    },
)
context = ns.model(
    "Recommendation context",
    {
        "user_id": USER_ID,
        "aai_uid": NullableString(
            description="AAI id of the logged-in user (used when user_id is absent)",
            example="abc@egi.eu",
        ),
        "unique_id": UNIQUE_ID,
        "client_id": fields.String(
            enum=["marketplace", "search_service", "user_dashboard", "undefined"],
            description="Only `marketplace` answers are also published to the databus",
            example="marketplace",
        ),
        "timestamp": TIMESTAMP,
        "visit_id": NullableUuid(
            required=True,
            description="UUID of the page visit showing the panel; null on a first view",
            example="202b9e2e-48a4-4d4e-b8a0-ae5b5e4b3c1d",
        ),
        "page_id": fields.String(required=True, example="/services"),
        "panel_id": fields.String(
            enum=["v1", "v2", "service", ""],
            description="`v1` (3 services), `v2` (2); `service`, empty or absent mean `v1`",
            example="v1",
        ),
        "engine_version": NullableString(
            description=(
                "Preferred engine: NCF, RL, Random, NCFRanking, RandomRanking, Popularity "
                "(case-insensitive; unknown names are ignored)"
            ),
            example="RL",
        ),
        "candidates": fields.List(
            fields.Integer,
            description="Service ids from the search; empty or absent: every service",
            example=[1, 2, 3, 4, 5, 6],
        ),
        "search_data": fields.Nested(search_data, required=True),
    },
)
recommendations = ns.model(
    "Recommendations",
    {
        "panel_id": fields.String(example="v1"),
        "recommendations": fields.List(fields.Integer, example=[4, 1, 6]),
        "scores": fields.List(fields.Float, example=[0.9, 0.7, 0.4]),
        "explanations": fields.List(fields.String, description="One per service"),
        "explanations_short": fields.List(fields.String, description="One per service"),
        "engine_version": fields.String(description="The engine really used", example="NCF"),
    },
)

# Every registered engine gets its `GET /health` check.
registry.register_health_checks()


@ns.route("")
class Recommendations(Resource):
    @ns.doc(
        description=(
            "Services to show in a panel: the top K (3 for `v1`, 2 for `v2`) or, for ranking "
            "engines, every candidate ordered. Only published and unverified services are "
            "returned, never one the user already accessed. Anonymous visitors get the most "
            "popular services in their search context."
        )
    )
    # Documented here, validated by the service's pydantic model (same rules, strict types):
    # restx's jsonschema validation costs ~10 ms for a body with 1,000 candidates.
    @ns.expect(context, validate=False)
    @ns.response(200, "Recommended services (empty lists when nothing fits)", recommendations)
    @ns.response(400, "Invalid request; `errors` maps each field to its problem")
    @ns.response(401, "Missing or wrong bearer token")
    @ns.response(415, "The body is not JSON")
    def post(self):
        if not request.is_json:
            raise UnsupportedMediaType("The body must be JSON (Content-Type: application/json)")
        return service.recommend(request.get_data())
