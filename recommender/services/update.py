"""`POST /update`: validate a dump, guard the live catalogue, keep the dump in GridFS, load it
and train in the background, one update at a time (the update lease)."""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from typing import Any

from recommender.celery_app import celery
from recommender.dump.guard import GuardReport, check_dump
from recommender.dump.loader import load_catalogue
from recommender.dump.references import drop_dangling_references
from recommender.dump.schema import validate_dump
from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.spec import TrainingEnv, resolve
from recommender.errors import ConflictError, UnavailableError
from recommender.models.ops import UpdateTask, utcnow
from recommender.services.runtime import runtime
from recommender.store import get_fs, leases
from recommender.store.leases import KeptLease, LeaseLostError
from recommender.store.snapshot import snapshot

logger = logging.getLogger(__name__)
UPDATE_LEASE = "update"
UPDATE_TASK = "recommender.tasks.update"
QUEUE_UNREACHABLE = (
    "The task queue (Redis) is unreachable: the dump was not accepted; send it again once "
    "the queue is back"
)
INTERRUPTED = "interrupted: its worker stopped before it finished (the update lease expired)"


def _refusal(report: GuardReport) -> str:
    return "Dump refused: " + "; ".join(report.problems)


def submit_dump(payload: Any, seed: int, force: bool = False) -> UpdateTask:
    """Validate the dump (InvalidInputError names bad fields), guard the live catalogue
    (ConflictError, recorded as a refused task, unless `force`), store it, enqueue the update
    (UnavailableError when the queue is unreachable)."""
    entities = validate_dump(payload)
    task_id = str(uuid.uuid4())
    if not force:
        report = check_dump(entities, runtime().settings.UPDATE_MAX_REMOVED_SHARE)
        if report.problems:
            refuse(UpdateTask(task_id=task_id, report={"seed": seed}), report)
    raw = gzip.compress(json.dumps(payload, separators=(",", ":")).encode(), compresslevel=1)
    file_id = get_fs().put(raw, filename=f"dump-{task_id}.json.gz")
    task = UpdateTask(
        task_id=task_id, dump_file_id=file_id, report={"seed": seed, "force": force}
    ).save()
    try:
        # retry=False: with Redis down, answer at once instead of retrying inside the request.
        celery.tasks[UPDATE_TASK].apply_async(args=[task_id], task_id=task_id, retry=False)
    except Exception as error:  # kombu/redis connection errors; nothing was queued
        logger.error("Cannot queue update %s: %s", task_id, error)
        get_fs().delete(file_id)
        _set(task, status="failed", reason=QUEUE_UNREACHABLE, finished_at=utcnow())
        raise UnavailableError(QUEUE_UNREACHABLE) from None
    return task.reload()


def refuse(task: UpdateTask, report: GuardReport) -> None:
    """Record `task` as refused by the guard, then raise the 409 that says why."""
    message = _refusal(report)
    task.report["guard"] = report.as_dict()
    _set(task, status="refused", reason=message, step=None, finished_at=utcnow())
    raise ConflictError(
        f"{message}. POST /update?force=true loads it anyway",
        {"task_id": task.task_id, **report.as_dict()},
    )


def _set(task: UpdateTask, **fields) -> None:
    for key, value in fields.items():
        setattr(task, key, value)
    task.save()


def settle_interrupted(task: UpdateTask) -> UpdateTask:
    """A task still `running` without the update lease was interrupted (its worker died and the
    lease expired): record it as failed, with that reason."""
    if task.status == "running" and leases.holder_of(UPDATE_LEASE) != task.task_id:
        _set(task, status="failed", reason=INTERRUPTED, step=None, finished_at=utcnow())
    return task


def wait_for_turn(task: UpdateTask) -> bool:
    """Take the update lease; False (the task stays queued) while another update holds it.
    Taking it settles any update it was taken from (interrupted)."""
    if leases.acquire(UPDATE_LEASE, task.task_id, runtime().settings.UPDATE_LEASE_TTL):
        for other in UpdateTask.objects(status="running", task_id__ne=task.task_id):
            settle_interrupted(other)
        return True
    _set(task, status="queued", step=f"waiting for update {leases.holder_of(UPDATE_LEASE)}")
    return False


def run_update(task: UpdateTask, progress: bool = False) -> UpdateTask:
    """Load the task's dump atomically, then run the training chain. The update lease (taken by
    `wait_for_turn`) is renewed while it runs and released after it, whatever happens."""
    with leases.kept(UPDATE_LEASE, task.task_id, runtime().settings.UPDATE_LEASE_TTL) as lease:
        _set(task, status="running", started_at=utcnow(), step="loading dump")
        try:
            loaded = _load(task)
            if loaded:
                _train(task, lease, progress)
        except LeaseLostError as error:
            _set(task, status="failed", reason=str(error), step=None, finished_at=utcnow())
    return task


def _load(task: UpdateTask) -> bool:
    """Validate, guard (unless forced), clean and load the stored dump; False when it was not
    loaded (recorded on the task: the live catalogue is unchanged)."""
    try:
        entities = validate_dump(
            json.loads(gzip.decompress(get_fs().get(task.dump_file_id).read()))
        )
        if not task.report.get("force"):
            # Checked again: an update that ran since the POST may have changed what is live.
            report = check_dump(entities, runtime().settings.UPDATE_MAX_REMOVED_SHARE)
            if report.problems:
                refuse(task, report)
        dropped = drop_dangling_references(entities)
        counts = load_catalogue(entities)
    except ConflictError:
        return False
    except Exception as error:
        logger.exception("Loading dump of update %s failed", task.task_id)
        _set(task, status="failed", reason=f"loading dump: {error}", finished_at=utcnow())
        return False
    finally:
        get_fs().delete(task.dump_file_id)
    task.report.update({"counts": counts, "dropped_references": dropped, "training": []})
    return True


def _train(task: UpdateTask, lease: KeptLease, progress: bool) -> None:
    outcomes = train_chain(task, seed=task.report.get("seed", 42), progress=progress, lease=lease)
    failed = [o for o in outcomes if o.status == "failed"]
    _set(
        task,
        status="failed" if failed else "succeeded",
        reason="; ".join(f"{o.pipeline}: {o.reason}" for o in failed) or None,
        step=None,
        finished_at=utcnow(),
    )


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


def train_chain(
    task: UpdateTask | None, seed: int, progress: bool, lease: KeptLease | None = None
) -> list[PipelineOutcome]:
    """Run the training chain (every served engine's stages, in order); see `train_stage`.
    With a `lease`, LeaseLostError stops it before a stage when the lease was lost."""
    outcomes = []
    with snapshot():  # the stages read the catalogue once, and all train on the same data
        for stage in runtime().engines.stages():
            if lease is not None:
                lease.check()
            if task is not None:
                _set(task, step=f"training {stage.name}")
            outcome = train_stage(stage.name, seed, progress)
            outcomes.append(outcome)
            if task is not None:
                task.report["training"].append(outcome.as_dict())
                task.save()
    return outcomes
