"""`GET /evaluation/off-policy`: off-policy estimates of every engine from logged traffic."""

from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource

from recommender.api.openapi import register
from recommender.errors import InvalidInputError
from recommender.schemas.off_policy import OffPolicyView, parse_query
from recommender.services.runtime import runtime

ns = Namespace("evaluation", description="How well the engines would do, from logged traffic")
report_model = register(ns, OffPolicyView)


@ns.route("/off-policy")
class OffPolicy(Resource):
    @ns.doc(
        description=(
            "Per enabled top-K engine (whether or not it ever served), its expected slate "
            "reward per request (the sum over shown positions of the value of the journey "
            "each started: order 1, interest 0.7, mild interest 0.3, else 0) estimated from "
            "the stored recommendations that carry propensities and the user actions after "
            "them: IPS, self-normalised IPS and doubly robust, each with a 95% bootstrap "
            "interval, and the number of logged recommendations each uses. An engine without a "
            "model is listed with `status` and `reason`. Reports are cached per process for "
            "OFF_POLICY_CACHE_SECONDS (a new model or catalogue is never answered from the "
            "cache)."
        ),
        params={
            "engines": {
                "in": "query",
                "type": "string",
                "description": "Comma-separated engines (default: every enabled top-K engine)",
            },
            "max_logged": {
                "in": "query",
                "type": "integer",
                "minimum": 1,
                "description": "Newest logged recommendations to use (at most, and default: "
                "OFF_POLICY_MAX_LOGGED)",
            },
        },
    )
    @ns.response(200, "The report", report_model)
    @ns.response(400, "A bad query parameter; `errors` names it")
    @ns.response(503, "The database is unreachable")
    def get(self):
        # Imported on the first report: the report reads sessions (journeys, rewards), which a
        # serving process never loads otherwise (tests/architecture/test_serving_imports.py).
        from recommender.services.off_policy import UnknownEngineError, off_policy_report

        query = parse_query(request.args)
        limit = runtime().settings.OFF_POLICY_MAX_LOGGED
        if query.max_logged is not None and query.max_logged > limit:
            raise InvalidInputError(
                {"max_logged": f"must be at most {limit} (OFF_POLICY_MAX_LOGGED)"}
            )
        try:
            report = off_policy_report(query.engines, query.max_logged)
        except UnknownEngineError as error:
            raise InvalidInputError({"engines": str(error)}) from None
        return report.as_json()
