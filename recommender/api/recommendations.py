"""`POST /recommendations`: the documented schema is the validated one (schemas/recommendation)."""

from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource
from werkzeug.exceptions import UnsupportedMediaType

from recommender.api.openapi import register
from recommender.schemas.recommendation import RecommendationRequest, Recommendations
from recommender.services import recommendations as service

ns = Namespace("recommendations", description="Recommended services for a Marketplace panel")
context = register(ns, RecommendationRequest)
answer = register(ns, Recommendations)


@ns.route("")
class RecommendationsResource(Resource):
    @ns.doc(
        description=(
            "Services to show in a panel: the top K (3 for `v1`, 2 for `v2`) or, for ranking "
            "engines, every candidate ordered. Only published and unverified services are "
            "returned, never one the user already accessed. Anonymous visitors get the most "
            "popular services in their search context."
        )
    )
    # Validated by the service's pydantic model (whose schema this is), in one pass over the
    # raw body: restx's jsonschema validation would cost ~10 ms for 1,000 candidates.
    @ns.expect(context, validate=False)
    @ns.response(200, "Recommended services (empty lists when nothing fits)", answer)
    @ns.response(400, "Invalid request; `errors` maps each field to its problem")
    @ns.response(401, "Missing or wrong bearer token")
    @ns.response(415, "The body is not JSON")
    def post(self):
        if not request.is_json:
            raise UnsupportedMediaType("The body must be JSON (Content-Type: application/json)")
        return service.recommend(request.get_data())
