"""Publishing served recommendations to the databus.

Two halves, so that serving never waits on a broker:
- `publish_recommendation(context, response)` (called for Marketplace requests) only puts the
  pair in an in-process outbox and returns; a daemon thread hands each one to the Celery task.
  When Redis (or, when tasks run eagerly, the broker) is unreachable the thread drops
  publications (counted) for a few seconds instead of waiting on every one; a full outbox
  drops too.
- The Celery task (`recommender.databus.tasks`) sends the message over one STOMP connection per
  worker process, waits for the broker's receipt, and is retried with back-off on failure.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any

import stomp
from celery.result import EagerResult
from prometheus_client import Counter

from recommender.broker import BusSettings, close, open_connection
from recommender.celery_app import celery

logger = logging.getLogger(__name__)
RECOMMENDER_SYSTEM = "recommender"
OUTBOX_SIZE = 10_000
PAUSE_AFTER_FAILURE_S = 5.0
PUBLISH_TASK = "recommender.databus.tasks.send_recommendation_to_databus"

PUBLISHED = Counter("recommender_databus_published_total", "Recommendations sent to the databus")
PUBLISH_RETRIES = Counter(
    "recommender_databus_publish_retries_total", "Publications retried after a broker failure"
)
PUBLISH_DROPPED = Counter(
    "recommender_databus_publish_dropped_total",
    "Recommendations not sent to the databus",
    ["reason"],  # backlog | queue_unreachable | databus_unreachable | gave_up | invalid
)


class PublishError(Exception):
    """The broker did not confirm a message (no receipt in time, or the connection dropped)."""


def recommendation_message(context: Mapping, response: Mapping) -> str:
    """The body the Marketplace's consumers read (the original's shape)."""
    return json.dumps(
        {"recommender_system": RECOMMENDER_SYSTEM, "context": context, "response": response}
    )


class _Receipts(stomp.ConnectionListener):
    def __init__(self) -> None:
        self._waiting: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def expect(self, receipt: str) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._waiting[receipt] = event
        return event

    def on_receipt(self, frame) -> None:
        with self._lock:
            event = self._waiting.pop(frame.headers.get("receipt-id", ""), None)
        if event is not None:
            event.set()

    def on_disconnected(self) -> None:
        # Wake every waiter now; the sender sees the connection is gone and fails.
        with self._lock:
            waiting, self._waiting = self._waiting, {}
        for event in waiting.values():
            event.set()


class Channel:
    """One STOMP connection per process, opened on first use and reused by every send."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: stomp.Connection11 | None = None
        self._receipts = _Receipts()
        self._settings: BusSettings | None = None

    def send(self, settings: BusSettings, destination: str, body: str) -> None:
        """Send `body` and wait for the broker's receipt; PublishError or a STOMP/OS error
        when it is not confirmed (the connection is then dropped and re-opened next time)."""
        with self._lock:
            connection = self._connected(settings)
            receipt = str(uuid.uuid4())
            confirmed = self._receipts.expect(receipt)
            try:
                connection.send(
                    destination,
                    body,
                    content_type="application/json",
                    headers={"persistent": "true", "receipt": receipt},
                )
                if not confirmed.wait(settings.timeout_s) or not connection.is_connected():
                    raise PublishError(f"no receipt from {settings.address}")
            except Exception:
                self._drop()
                raise

    def _connected(self, settings: BusSettings) -> stomp.Connection11:
        if self._connection is not None and (
            settings != self._settings or not self._connection.is_connected()
        ):
            self._drop()
        if self._connection is None:
            self._connection = open_connection(settings, {"receipts": self._receipts})
            self._settings = settings
        return self._connection

    def _drop(self) -> None:
        close(self._connection, wait_s=0.5)
        self._connection = None

    def close(self) -> None:
        with self._lock:
            self._drop()

    def forget_after_fork(self) -> None:
        # The socket belongs to the parent: a DISCONNECT from the child would end its session.
        self.__init__()


channel = Channel()
os.register_at_fork(after_in_child=channel.forget_after_fork)


class Outbox:
    """Publications waiting for the Celery queue, handed over by one daemon thread."""

    def __init__(self, size: int = OUTBOX_SIZE, pause_s: float = PAUSE_AFTER_FAILURE_S):
        self.size = size
        self.pause_s = pause_s
        self._reset()

    def _reset(self) -> None:
        self._queue: queue.Queue = queue.Queue(self.size)
        self._thread: threading.Thread | None = None
        self._paused_until = 0.0
        self._paused_because = "queue_unreachable"
        self._lock = threading.Lock()

    def put(self, context: Mapping, response: Mapping) -> bool:
        """Queue one publication; False (dropped, counted) when the outbox is full."""
        try:
            self._queue.put_nowait((dict(context), dict(response)))
        except queue.Full:
            PUBLISH_DROPPED.labels("backlog").inc()
            return False
        self._ensure_thread()
        return True

    def wait_empty(self, timeout_s: float) -> bool:
        """True once everything queued was handed over (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self._queue.unfinished_tasks

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="databus-outbox", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            context, response = self._queue.get()
            try:
                self._hand_over(context, response)
            finally:
                self._queue.task_done()

    def _hand_over(self, context: dict, response: dict) -> None:
        if time.monotonic() < self._paused_until:
            PUBLISH_DROPPED.labels(self._paused_because).inc()
            return
        try:
            # retry=False: with Redis down, fail once and quickly instead of retrying here.
            result = celery.tasks[PUBLISH_TASK].apply_async((context, response), retry=False)
        except Exception as error:
            PUBLISH_DROPPED.labels("queue_unreachable").inc()
            self._pause("queue_unreachable", f"cannot queue a databus publication ({error})")
            return
        if isinstance(result, EagerResult) and result.failed():
            # Run eagerly (demo, mongomock), the task itself met the broker outage.
            self._pause("databus_unreachable", f"publishing failed ({result.result})")

    def _pause(self, reason: str, why: str) -> None:
        self._paused_until = time.monotonic() + self.pause_s
        self._paused_because = reason
        logger.warning("%s; dropping databus publications for %.0f s", why, self.pause_s)


outbox = Outbox()
os.register_at_fork(after_in_child=outbox._reset)


def publish_recommendation(context: Mapping[str, Any], response: Mapping[str, Any]) -> bool:
    """Publish a served Marketplace recommendation to RS_DATABUS_PUBLISH_TOPIC, eventually.

    Returns at once, never raises: True when queued, False when dropped (counted in
    `recommender_databus_publish_dropped_total`)."""
    try:
        return outbox.put(context, response)
    except Exception:  # e.g. a context that is not a mapping: never fail the caller
        logger.exception("Could not queue a databus publication")
        PUBLISH_DROPPED.labels("invalid").inc()
        return False
