"""The process of `test_worker_killed`: a service whose Celery worker is SIGKILLed mid-training.

Run as `python -m tests.faults.worker_crash`. It serves from the test store, runs a real Celery
worker (solo pool, real Redis, its own queue) and posts an update whose training stage blocks.
Once the stage runs it forks: this process (the worker, with its threads) prints
`KILL ME <pid>` and waits for the test's SIGKILL; the child, holding the store and the API
exactly as they were at that instant and none of the worker's threads, waits until its parent
is gone, then plays the rest of the service and prints `RESULT <json>`.
"""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import threading
import time

from recommender.engines.base.outcome import PipelineOutcome
from recommender.engines.spec import Stage

WORKER_PID = os.getpid()
TRAINING = threading.Event()


def stage(env, seed, progress) -> PipelineOutcome:
    """Blocks forever in the worker process (killed there); trains at once anywhere else."""
    if os.getpid() == WORKER_PID:
        TRAINING.set()
        while True:
            time.sleep(60)
    return PipelineOutcome(pipeline="stage", status="promoted")


def post(client, path: str, body: dict):
    response = client.post(path, json=body)
    return response.status_code, response.get_json()


def after_the_kill(app, client, task_id: str, served: dict) -> dict:
    """What the rest of the service sees once the worker is gone."""
    from recommender.celery_app import celery
    from recommender.models import Lease, ModelVersion, UpdateTask
    from recommender.services.update import UPDATE_LEASE
    from recommender.store import leases
    from tests.api.helpers import body
    from tests.marketplace_dump import marketplace_dump

    found: dict = {"left_by_the_kill": UpdateTask.objects.get(task_id=task_id).status}
    # The lease as the kill left it, expired or not (a slow child may first run after its
    # expiry): still there and still the task's, since nothing released it.
    found["lease_holder_after_the_kill"] = Lease.objects.get(name=UPDATE_LEASE).holder
    found["serving"] = post(client, "/recommendations", body(engine_version="Popularity"))
    found["served_before"] = served
    found["live_models"] = sorted((m.name, m.version) for m in ModelVersion.objects(status="live"))
    deadline = time.monotonic() + 30
    while leases.holder_of(UPDATE_LEASE) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    found["lease_expired"] = leases.holder_of(UPDATE_LEASE) is None
    found["interrupted"] = client.get(f"/update/{task_id}").get_json()
    celery.conf.task_always_eager = True  # the next update runs here, in this process
    status, next_task = post(client, "/update?force=true", marketplace_dump())
    found["next_update"] = (status, client.get(f"/update/{next_task['task_id']}").get_json())
    return found


def main() -> None:
    from celery.contrib.testing.worker import start_worker

    from recommender import create_app
    from recommender.celery_app import celery
    from recommender.engines.popularity.pipeline import train as train_popularity
    from recommender.services import update
    from recommender.services.runtime import runtime
    from tests.api.helpers import body, load
    from tests.app_helpers import env
    from tests.marketplace_dump import marketplace_dump

    queue = sys.argv[1]
    app = create_app(
        "testing",
        MONGODB_HOST="mongomock",
        CELERY_TASK_ALWAYS_EAGER=False,
        RS_API_TOKEN=None,
        RS_DATABUS_ENABLED=False,
        MODEL_RELOAD_INTERVAL=0,
        UPDATE_LEASE_TTL=1.0,
        # Exploration off: the answer after the kill is compared with the one before it, and
        # an explored answer (the default epsilon) would differ by design, not by the kill.
        EXPLORATION_EPSILON_V1=0,
        EXPLORATION_EPSILON_V2=0,
    )
    celery.conf.task_default_queue = queue
    with app.app_context():
        client = app.test_client()
        load()
        train_popularity(env())
        _, served = post(client, "/recommendations", body(engine_version="Popularity"))
        runtime().engines.stages = lambda: [Stage("stage", "tests:stage")]
        update.resolve = lambda target: stage
        worker = start_worker(celery, queues=[queue], perform_ping_check=False, pool="solo")
        worker.__enter__()
        status, task = post(client, "/update?force=true", marketplace_dump(n_services=24))
        assert status == 202, task
        assert TRAINING.wait(60), "the worker did not start training"
        worker_process = os.getpid()  # read before the fork: the test may kill it before the
        child = os.fork()  # child first runs, and the child would then wait for no one
        if child:
            print(f"KILL ME {worker_process} {task['task_id']}", flush=True)
            while True:
                time.sleep(60)
        # A child stuck anywhere prints where, and ends, long before the test's timeout.
        faulthandler.dump_traceback_later(120, exit=True)
        while os.getppid() == worker_process:  # reparented once the worker process is gone
            time.sleep(0.05)
        found = after_the_kill(app, client, task["task_id"], served)
        print("RESULT " + json.dumps(found, default=str), flush=True)
        os._exit(0)


if __name__ == "__main__":
    main()
