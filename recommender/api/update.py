"""`POST /update` (a Marketplace dump) and `GET /update/<task_id>` (how it went)."""

from __future__ import annotations

from flask import request
from flask_restx import Namespace, Resource

from recommender.api.openapi import register
from recommender.dump.schema import DUMP_ADAPTER
from recommender.errors import InvalidInputError
from recommender.models.ops import UpdateTask
from recommender.schemas.update import UpdateTaskView
from recommender.services.runtime import runtime
from recommender.services.update import settle_interrupted, submit_dump

ns = Namespace("update", description="Replace the catalogue with a Marketplace dump and retrain")
dump_model = register(ns, DUMP_ADAPTER)
task_model = register(ns, UpdateTaskView)
# An accepted (202) or refused (409) dump's task id -> its state at GET /update/<task_id>.
TASK_STATE = {
    "GetUpdateTask": {
        "operationId": "get_update_status",
        "parameters": {"path.task_id": "$response.body#/task_id"},
        "description": "The update task's state",
    }
}
LINKS = {("/update", "post", "202"): TASK_STATE, ("/update", "post", "409"): TASK_STATE}


FORCE_VALUES = {"true": True, "1": True, "false": False, "0": False, "": False}


def force_flag() -> bool:
    """`?force=true` (or 1); anything but true/false/1/0 is a 400 naming `force`."""
    value = request.args.get("force", "").strip().lower()
    if value not in FORCE_VALUES:
        raise InvalidInputError({"force": "must be true or false"})
    return FORCE_VALUES[value]


def task_view(task: UpdateTask) -> dict:
    return UpdateTaskView.model_validate(task, from_attributes=True).as_json()


@ns.route("")
class Update(Resource):
    @ns.doc(
        description=(
            "Validates the whole dump (a 400 names each wrong field and nothing changes), stores "
            "it and answers 202 with a task id. A worker then replaces the catalogue atomically "
            "and retrains every engine; follow it at `/update/<task_id>`. References to ids not "
            "in the dump are dropped and counted in the task's report. A dump holding no "
            "recommendable service, or removing more than UPDATE_MAX_REMOVED_SHARE (default "
            "50%) of the live recommendable services or of the users, is refused with a 409 "
            "giving the numbers (live, dump, removed) and recorded as a `refused` task; "
            "`?force=true` loads it anyway. The first dump into an empty store is never refused."
        ),
        params={
            "force": {
                "in": "query",
                "type": "boolean",
                "description": "Load the dump even when the guard would refuse it",
            }
        },
    )
    @ns.expect(dump_model, validate=False)  # validated by the pydantic schema it documents
    @ns.response(202, "Accepted: loading and training run in the background", task_model)
    @ns.response(400, "Invalid dump; `errors` maps each field path to its problem")
    @ns.response(401, "Missing or wrong bearer token")
    @ns.response(
        409,
        "Refused by the guard (nothing changed): `problems`, `live`, `dump` and `removed` "
        "counts of recommendable services and users, `max_removed_share`, the refused "
        "`task_id`; repeat with `?force=true` to load it anyway",
    )
    @ns.response(413, "Dump larger than MAX_CONTENT_LENGTH")
    @ns.response(503, "The task queue or the database is unreachable: nothing was accepted")
    def post(self):
        task = submit_dump(
            request.get_json(), seed=runtime().settings.TRAINING_SEED, force=force_flag()
        )
        return task_view(task), 202, {"Location": f"/update/{task.task_id}"}


@ns.route("/<string:task_id>")
class UpdateStatus(Resource):
    @ns.response(200, "The task's state", task_model)
    @ns.response(404, "No such task")
    def get(self, task_id: str):
        task = UpdateTask.objects(task_id=task_id).first()
        if task is None:
            ns.abort(404, f"No update task {task_id}")
        return task_view(settle_interrupted(task))
