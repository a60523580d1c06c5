"""A Celery worker SIGKILLed in the middle of training: the live models keep serving, the
update's lease expires and the next update runs, and the interrupted task ends as failed with
the reason.

Design (there is no MongoDB server here, and the mongomock store lives inside one process): a
subprocess (tests/faults/worker_crash.py) runs the service on the test store with a real Celery
worker on the real Redis, and posts an update whose training stage blocks. While the worker is
inside that stage the process forks: the child keeps the store, the API and the in-memory caches
exactly as they were at that instant, without the worker's threads (the worker, its lease
renewal, its Redis connection); the parent, the worker, is then killed with SIGKILL by this
test. So the child stands for the rest of a deployment (MongoDB, the API processes) and sees
what a SIGKILLed worker leaves behind: no code of the worker runs after the instant of the
kill, its lease is no longer renewed, and its Celery message was acknowledged when it started
(nothing is redelivered). What this design cannot show is a write cut half-way by the kill;
every write here is one MongoDB operation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import redis

from recommender.services.update import INTERRUPTED

pytestmark = pytest.mark.redis
ROOT = Path(__file__).resolve().parents[2]


def read_line(process: subprocess.Popen, prefix: str, seen: list[str]) -> str:
    for line in process.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    raise AssertionError(f"no {prefix!r} line:\n" + "".join(seen))


def test_a_worker_killed_mid_training_leaves_serving_and_the_next_update_working():
    queue = f"test-crash-{uuid.uuid4()}"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.worker_crash", queue],
        cwd=ROOT,
        env={**os.environ, "FLASK_ENV": "testing", "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen: list[str] = []
    try:
        worker_pid, task_id = read_line(process, "KILL ME ", seen).split()
        assert int(worker_pid) == process.pid
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(30) == -signal.SIGKILL
        found = json.loads(read_line(process, "RESULT ", seen))
    finally:
        if process.poll() is None:
            process.kill()
        broker = redis.Redis(host="127.0.0.1", port=6379)
        waiting = broker.llen(queue)
        for key in broker.scan_iter(f"*{queue}*"):
            broker.delete(key)
    assert waiting == 0  # acknowledged when it started: not redelivered
    assert found["left_by_the_kill"] == "running"
    assert found["lease_holder_after_the_kill"] == task_id
    status, answer = found["serving"]
    assert status == 200
    assert answer == found["served_before"]  # the live model, from memory and the store
    assert found["live_models"] == [["popularity", 1]]
    assert found["lease_expired"]
    interrupted = found["interrupted"]
    assert (interrupted["status"], interrupted["reason"]) == ("failed", INTERRUPTED)
    status, next_update = found["next_update"]
    assert status == 202
    assert next_update["status"] == "succeeded", next_update
