"""`POST /update` (a Marketplace dump) and `GET /update/<task_id>` (how it went)."""

from __future__ import annotations

from flask import current_app, request
from flask_restx import Namespace, Resource, fields

from recommender.api.errors import PayloadError
from recommender.dump.schema import DumpValidationError
from recommender.models.ops import UpdateTask
from recommender.services.update import submit_dump

ns = Namespace("update", description="Replace the catalogue with a Marketplace dump and retrain")

IntList = fields.List(fields.Integer)
named = {"id": fields.Integer(required=True), "name": fields.String(required=True)}
described = {**named, "description": fields.String(required=True, description="May be null")}

service = ns.model(
    "Service",
    {
        "id": fields.Integer(required=True, example=1),
        "pid": fields.String(description="May be null", example="egi.notebooks"),
        "name": fields.String(required=True, example="EGI Notebooks"),
        "description": fields.String(required=True, description="May be null"),
        "tagline": fields.String(required=True, description="May be null"),
        "countries": fields.List(fields.String, required=True, example=["PL", "DE"]),
        "order_type": fields.String(required=True, example="open_access"),
        "rating": fields.String(required=True, example="4.5"),
        "categories": IntList,
        "providers": IntList,
        "resource_organisation": fields.Integer(required=True),
        "scientific_domains": IntList,
        "platforms": IntList,
        "target_users": IntList,
        "related_services": IntList,
        "required_services": IntList,
        "access_modes": IntList,
        "access_types": IntList,
        "trls": IntList,
        "life_cycle_statuses": IntList,
        "research_steps": IntList,
        "horizontal": fields.Boolean(required=True),
        "status": fields.String(
            example="published", description="Only published and unverified are recommended"
        ),
    },
)
user = ns.model(
    "User",
    {
        "id": fields.Integer(required=True),
        "aai_uid": fields.String(required=True, example="abc@egi.eu"),
        "scientific_domains": IntList,
        "categories": IntList,
        "accessed_services": fields.List(
            fields.Integer, required=True, description="Ordered services, oldest first"
        ),
    },
)
project = ns.model(
    "Project",
    {
        "id": fields.Integer(required=True),
        "user_id": fields.Integer(required=True),
        "services": IntList,
    },
)
provider = ns.model(
    "Provider", {**named, "pid": fields.String(required=True, description="May be null")}
)
ENTITY_MODELS = {
    "services": service,
    "users": user,
    "projects": project,
    "categories": ns.model("Category", named),
    "providers": provider,
    "scientific_domains": ns.model("Scientific domain", named),
    "platforms": ns.model("Platform", named),
    "target_users": ns.model("Target user", described),
    "access_modes": ns.model("Access mode", described),
    "access_types": ns.model("Access type", described),
    "trls": ns.model("TRL", described),
    "life_cycle_statuses": ns.model("Life cycle status", described),
    "research_steps": ns.model("Research step", described),
}
dump_model = ns.model(
    "Database dump",
    {key: fields.List(fields.Nested(model), required=True) for key, model in ENTITY_MODELS.items()},
)
task_model = ns.model(
    "Update task",
    {
        "task_id": fields.String,
        "status": fields.String(enum=["queued", "running", "succeeded", "failed"]),
        "step": fields.String(description="What a running (or waiting) update is doing now"),
        "reason": fields.String(description="Why it failed"),
        "report": fields.Raw(
            description="Entities loaded, dangling references dropped, each training outcome"
        ),
        "created_at": fields.DateTime,
        "started_at": fields.DateTime,
        "finished_at": fields.DateTime,
    },
)


def task_view(task: UpdateTask) -> dict:
    return {
        "task_id": task.task_id,
        "status": task.status,
        "step": task.step,
        "reason": task.reason,
        "report": task.report,
        "created_at": task.created_at.isoformat() if task.created_at else None,
        "started_at": task.started_at.isoformat() if task.started_at else None,
        "finished_at": task.finished_at.isoformat() if task.finished_at else None,
    }


@ns.route("")
class Update(Resource):
    @ns.doc(
        description=(
            "Validates the whole dump (a 400 names each wrong field and nothing changes), stores "
            "it and answers 202 with a task id. A worker then replaces the catalogue atomically "
            "and retrains every engine; follow it at `/update/<task_id>`. References to ids not "
            "in the dump are dropped and counted in the task's report."
        )
    )
    @ns.expect(dump_model, validate=False)  # validated by the stricter, faster dump schema
    @ns.response(202, "Accepted: loading and training run in the background", task_model)
    @ns.response(400, "Invalid dump; `errors` maps each field path to its problem")
    @ns.response(401, "Missing or wrong bearer token")
    @ns.response(413, "Dump larger than MAX_CONTENT_LENGTH")
    def post(self):
        payload = request.get_json()
        try:
            task = submit_dump(payload, seed=current_app.config["TRAINING_SEED"])
        except DumpValidationError as error:
            raise PayloadError(error.errors, "Invalid database dump") from None
        return task_view(task), 202, {"Location": f"/update/{task.task_id}"}


@ns.route("/<string:task_id>")
class UpdateStatus(Resource):
    @ns.response(200, "The task's state", task_model)
    @ns.response(404, "No such task")
    def get(self, task_id: str):
        task = UpdateTask.objects(task_id=task_id).first()
        if task is None:
            ns.abort(404, f"No update task {task_id}")
        return task_view(task)
