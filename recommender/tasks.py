"""Celery tasks. Task bodies stay thin: they call services."""

from __future__ import annotations

import time

from recommender.celery_app import celery
from recommender.models.ops import UpdateTask

# How long a queued update waits before it looks at the update lease again.
UPDATE_RETRY_S = 2


@celery.task(bind=True, name="recommender.tasks.update", max_retries=None)
def update(self, task_id: str) -> str:
    """Load a stored dump and train every engine; one update at a time."""
    from recommender.services.update import run_update, wait_for_turn

    task = UpdateTask.objects.get(task_id=task_id)
    while not wait_for_turn(task):
        if not self.request.is_eager:
            raise self.retry(countdown=UPDATE_RETRY_S)
        time.sleep(UPDATE_RETRY_S)  # an eager retry would recurse at once
    return run_update(task).status


@celery.task(name="recommender.tasks.ping")
def ping() -> bool:
    return True


@celery.task(name="recommender.tasks.experiment_results", ignore_result=True)
def experiment_results() -> int:
    """Update the running experiments' results (Celery beat runs it every minute)."""
    from recommender.services.experiments.results import refresh_running

    return refresh_running()
