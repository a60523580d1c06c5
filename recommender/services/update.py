"""`POST /update`: validate a dump, keep it in GridFS, load it and train in the background."""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from typing import Any

from recommender.celery_app import celery
from recommender.dump.loader import load_catalogue
from recommender.dump.references import drop_dangling_references
from recommender.dump.schema import validate_dump
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.spec import TrainingEnv, resolve
from recommender.models.ops import UpdateTask, utcnow
from recommender.services.runtime import runtime
from recommender.store import get_fs, leases

logger = logging.getLogger(__name__)
UPDATE_LEASE = "update"
UPDATE_LEASE_TTL_S = 3600.0
UPDATE_TASK = "recommender.tasks.update"


def submit_dump(payload: Any, seed: int) -> UpdateTask:
    """Validate the dump (InvalidInputError names bad fields), store it, enqueue the update."""
    validate_dump(payload)
    task_id = str(uuid.uuid4())
    raw = gzip.compress(json.dumps(payload, separators=(",", ":")).encode(), compresslevel=1)
    file_id = get_fs().put(raw, filename=f"dump-{task_id}.json.gz")
    task = UpdateTask(task_id=task_id, dump_file_id=file_id, report={"seed": seed}).save()
    celery.tasks[UPDATE_TASK].apply_async(args=[task_id], task_id=task_id)
    return task.reload()


def _set(task: UpdateTask, **fields) -> None:
    for key, value in fields.items():
        setattr(task, key, value)
    task.save()


def wait_for_turn(task: UpdateTask) -> bool:
    """Take the update lease; False (the task stays queued) while another update holds it."""
    if leases.acquire(UPDATE_LEASE, task.task_id, UPDATE_LEASE_TTL_S):
        return True
    _set(task, status="queued", step=f"waiting for update {leases.holder_of(UPDATE_LEASE)}")
    return False


def run_update(task: UpdateTask, progress: bool = False) -> UpdateTask:
    """Load the task's dump atomically, then run the training chain. Holds the update lease."""
    _set(task, status="running", started_at=utcnow(), step="loading dump")
    try:
        entities = validate_dump(
            json.loads(gzip.decompress(get_fs().get(task.dump_file_id).read()))
        )
        dropped = drop_dangling_references(entities)
        counts = load_catalogue(entities)
    except Exception as error:  # recorded on the task: the live catalogue is unchanged
        logger.exception("Loading dump of update %s failed", task.task_id)
        _set(task, status="failed", reason=f"loading dump: {error}", finished_at=utcnow())
        leases.release(UPDATE_LEASE, task.task_id)
        return task
    finally:
        get_fs().delete(task.dump_file_id)
    task.report.update({"counts": counts, "dropped_references": dropped, "training": []})
    outcomes = train_chain(task, seed=task.report.get("seed", 42), progress=progress)
    failed = [o for o in outcomes if o.status == "failed"]
    _set(
        task,
        status="failed" if failed else "succeeded",
        reason="; ".join(f"{o.pipeline}: {o.reason}" for o in failed) or None,
        step=None,
        finished_at=utcnow(),
    )
    leases.release(UPDATE_LEASE, task.task_id)
    return task


def training_env() -> TrainingEnv:
    """What the stages train with: the app's settings and served engines (baselines)."""
    current = runtime()
    return TrainingEnv(current.settings, current.engines.engines())


def train_stage(name: str, seed: int, progress: bool) -> PipelineOutcome:
    """Run training stage `name`; a crash is recorded as the stage's failure, never raised."""
    try:
        return resolve(runtime().engines.stage(name).train)(training_env(), seed, progress)
    except Exception as error:
        logger.exception("Training stage %s crashed", name)
        return PipelineOutcome(pipeline=name, status="failed", reason=str(error))


def train_chain(task: UpdateTask | None, seed: int, progress: bool) -> list[PipelineOutcome]:
    """Run the training chain (every served engine's stages, in order); see `train_stage`."""
    outcomes = []
    for stage in runtime().engines.stages():
        if task is not None:
            leases.acquire(UPDATE_LEASE, task.task_id, UPDATE_LEASE_TTL_S)  # renew
            _set(task, step=f"training {stage.name}")
        outcome = train_stage(stage.name, seed, progress)
        outcomes.append(outcome)
        if task is not None:
            task.report["training"].append(outcome.as_dict())
            task.save()
    return outcomes
