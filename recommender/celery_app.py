"""The Celery application: Redis broker and result backend, tasks run inside a Flask app context."""

from __future__ import annotations

import threading

from celery import Celery, Task
from flask import Flask, has_app_context

_flask_app: Flask | None = None
EXPERIMENT_RESULTS_TASK = "recommender.tasks.experiment_results"
EXPERIMENT_RESULTS_EVERY_S = 60.0
PUBLISH_TASK = "recommender.databus.tasks.publish_recommendations"
REDIS_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 0.5,
}


class ContextTask(Task):
    """Runs the task inside the app context of the last app given to `init_celery`."""

    def __call__(self, *args, **kwargs):
        if has_app_context() or _flask_app is None:
            return super().__call__(*args, **kwargs)
        with _flask_app.app_context():
            return super().__call__(*args, **kwargs)


celery = Celery(
    "recommender", task_cls=ContextTask, include=["recommender.tasks", "recommender.databus.tasks"]
)


def init_celery(app: Flask) -> Celery:
    """Point the Celery app at this Flask app's settings."""
    global _flask_app
    _flask_app = app
    _forget_connections()
    redis_url = f"redis://{app.config['REDIS_HOST']}/0"
    celery.conf.update(
        broker_url=app.config.get("CELERY_BROKER_URL") or redis_url,
        result_backend=app.config.get("CELERY_RESULT_BACKEND") or redis_url,
        task_always_eager=app.config["CELERY_TASK_ALWAYS_EAGER"],
        task_eager_propagates=False,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=24 * 3600,
        broker_connection_retry_on_startup=True,
        # Redis unreachable: an enqueue (POST /update, the /health ping) fails within about a
        # second, as a 503, instead of retrying the result backend 20 times inside the request.
        result_backend_transport_options={"retry_policy": REDIS_RETRY_POLICY},
        worker_hijack_root_logger=False,
        # A long training must not hold other tasks (pings, publishing) prefetched behind it.
        worker_prefetch_multiplier=1,
        beat_schedule=beat_schedule(app.config),
    )
    app.extensions["celery"] = celery
    return celery


def _forget_connections() -> None:
    """Drop what Celery built for an earlier configuration (its producer pool and result
    backend are cached): a process that builds a second app (`flask demo`, tests) then talks to
    the second app's broker and backend, not the first's."""
    celery._pool = None
    celery.__dict__.pop("amqp", None)  # a cached property, rebuilt from the new settings
    celery._backend_cache = None
    celery._local = threading.local()


def beat_schedule(config: dict) -> dict:
    """What `celery beat` enqueues: the experiments' results every minute and, while publishing
    is on, the databus outbox run. A run not taken within one interval expires (a stopped worker
    finds one run waiting, not a backlog)."""
    schedule = {
        "experiment-results": {
            "task": EXPERIMENT_RESULTS_TASK,
            "schedule": EXPERIMENT_RESULTS_EVERY_S,
            "options": {"expires": EXPERIMENT_RESULTS_EVERY_S},
        }
    }
    if config["RS_DATABUS_ENABLED"]:
        interval = config["RS_DATABUS_PUBLISH_INTERVAL"]
        schedule["publish-recommendations"] = {
            "task": PUBLISH_TASK,
            "schedule": interval,
            "options": {"expires": interval},
        }
    return schedule
