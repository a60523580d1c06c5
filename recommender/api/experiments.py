"""`/experiments`: online experiments between engines (create, list, show, stop)."""

from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource

from recommender.api.openapi import register
from recommender.schemas.experiment import ExperimentIn, ExperimentView
from recommender.services.experiments import manage, results
from recommender.services.experiments.manage import UnknownExperimentError
from recommender.services.runtime import runtime

ns = Namespace("experiments", description="Online experiments: traffic split between engines")
definition = register(ns, ExperimentIn)
experiment_model = register(ns, ExperimentView)


def found(experiment_id: str):
    try:
        return manage.find(experiment_id)
    except UnknownExperimentError as error:
        ns.abort(404, str(error))


@ns.route("")
class Experiments(Resource):
    @ns.doc(
        description=(
            "Starts an experiment: requests in its scope (panels, clients; absent: all) are "
            "split between the variants' engines by a stable hash of the visitor (the user id "
            "when logged in, else `unique_id`), in proportion to the shares. The first variant "
            "is the control. Two running experiments may not overlap in scope."
        )
    )
    @ns.expect(definition, validate=False)  # validated by the pydantic model it documents
    @ns.response(201, "Created and running", experiment_model)
    @ns.response(400, "Invalid definition; `errors` maps each field to its problem")
    @ns.response(401, "Missing or wrong bearer token")
    def post(self):
        experiment = manage.create(request.get_json(silent=True), runtime().engines)
        return manage.view(experiment), 201, {"Location": f"/experiments/{experiment.id}"}

    @ns.response(200, "Every experiment, newest first", [experiment_model])
    def get(self):
        return [manage.view(experiment) for experiment in manage.newest_first()]


@ns.route("/<string:experiment_id>")
class ExperimentResource(Resource):
    @ns.doc(
        description=(
            "The definition, status and results (updated every minute by the worker; "
            "`?refresh=true` counts what arrived since, up to a minute ago, first)."
        ),
        params={"refresh": "true: update the results now"},
    )
    @ns.response(200, "The experiment", experiment_model)
    @ns.response(404, "No such experiment")
    def get(self, experiment_id: str):
        experiment = found(experiment_id)
        if request.args.get("refresh", "").lower() in {"1", "true", "yes"}:
            experiment = results.refresh(experiment)
        return manage.view(experiment)


@ns.route("/<string:experiment_id>/stop")
class StopExperiment(Resource):
    @ns.doc(description="Stops the experiment after a last update of its results; kept.")
    @ns.response(200, "Stopped", experiment_model)
    @ns.response(401, "Missing or wrong bearer token")
    @ns.response(404, "No such experiment")
    def post(self, experiment_id: str):
        experiment = results.refresh(found(experiment_id))
        return manage.view(manage.stop(experiment))
