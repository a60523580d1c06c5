"""Gunicorn settings for the API container: `gunicorn app:app` reads this file from /app.

Each worker process builds the app once and keeps its models cached, so more workers cost memory,
never a model load per request. Override any setting with GUNICORN_CMD_ARGS (gunicorn's own
variable), e.g. GUNICORN_CMD_ARGS="--threads 8".
"""

import os

bind = "0.0.0.0:5000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = 4
# A dump (up to MAX_CONTENT_LENGTH) is read and validated inside the `POST /update` request.
timeout = 300
graceful_timeout = 30
# Heartbeat files in memory, not on the container's overlay filesystem.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"
errorlog = "-"


def pre_fork(server, worker):
    """With --preload (the serving benchmark; the image does not preload, so that each worker
    opens its own database connections), move everything the master built (app, caches) out
    of the garbage collector's view before forking: full collections then only walk what a
    worker creates, and the shared pages are not copied into each worker by its writes."""
    import gc

    gc.freeze()


def post_fork(server, worker):
    """Each worker's request threads share the interpreter with the bookkeeping writer, whose
    batch inserts hold the GIL; a request waiting for it waits up to the switch interval each
    time (5 ms by default), which set the p99. 1 ms keeps that wait short."""
    import sys

    sys.setswitchinterval(0.001)


def child_exit(server, worker):
    """With PROMETHEUS_MULTIPROC_DIR, drop a dead worker's live gauges from /metrics."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
